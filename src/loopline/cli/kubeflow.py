"""Kubeflow Pipelines from the CLI: ``loopline compile``, ``loopline step exec``,
``loopline submit``.

``compile`` writes KFP v2 IR whose steps run ``loopline step exec`` in loopline's image;
``step exec`` is that runner (inside the container); ``submit`` uploads the IR to a KFP
endpoint and starts a run. None of them imports kfp.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from loopline.cli.output import console, handle_errors, json_option, print_json
from loopline.cli.run import EXIT_BLOCKED, EXIT_FAILED, parse_params
from loopline.errors import InvalidInputError

if TYPE_CHECKING:
    from loopline.artifacts.store import ArtifactStore
    from loopline.bundle import Trust
    from loopline.metadata.store import MetadataStore

DEFAULT_PIPELINE_FILE = "pipeline.py"


def _default_image() -> str:
    from loopline import __version__
    from loopline.deploy.images import default_tag

    return default_tag(__version__)


@click.command("compile")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the pipeline YAML (KFP v2 IR).")  # fmt: skip
@click.option("--image", default=None, metavar="IMAGE",
              help="The image the steps run in (default: loopline build's tag, "
                   "loopline:<version>); push it where the cluster pulls from.")  # fmt: skip
@click.option("--app", "app_dir", default=None,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The project directory copied to the image's /app (loopline build --app); "
                   "default: FILE's directory.")  # fmt: skip
@click.option("--pipeline", "attribute", default=None, metavar="NAME",
              help="Which Pipeline object of FILE to compile, when it defines several.")
@click.option("--stores-secret", default=None, metavar="NAME",
              help="Give every step LOOPLINE_DB_URL and LOOPLINE_ARTIFACT_ROOT from this "
                   "Kubernetes Secret (e.g. loopline-stores): lineage, resolvers and the "
                   "Pusher then reach loopline's stores on the cluster.")  # fmt: skip
@handle_errors
def compile_(
    file: Path, output: Path, image: str | None, app_dir: Path | None, attribute: str | None,
    stores_secret: str | None,
) -> None:  # fmt: skip
    """Compile the pipeline in FILE to Kubeflow Pipelines v2 IR (runs on KFP and Vertex AI).

    Every step runs `loopline step exec` in IMAGE, which must hold this project at /app
    (build it with `loopline build --app DIR`). Paths inside the project directory become
    paths under /app; a path on this machine outside it is refused.
    """
    import yaml

    from loopline.pipeline.kubeflow import KfpTarget, compile_pipeline, platform_spec
    from loopline.pipeline.loader import load_pipeline

    pipeline = load_pipeline(file, attribute=attribute)
    app = (app_dir or file.parent).resolve()
    try:
        in_image = file.resolve().relative_to(app).as_posix()
    except ValueError:
        raise InvalidInputError(
            f"Pipeline file {str(file)!r} is not inside the project directory {str(app)!r}; "
            "pass --app with the directory loopline build copies to /app."
        ) from None
    target = KfpTarget(image=image or _default_image(), pipeline_file=in_image, attribute=attribute,
                       project_dir=app.as_posix())  # fmt: skip
    spec = compile_pipeline(pipeline, target, exists=os.path.exists)
    header = f"# PIPELINE DEFINITION\n# Name: {spec['pipelineInfo']['name']}\n"
    text = header + yaml.safe_dump(spec, sort_keys=True)
    if stores_secret is not None:
        text += "---\n" + yaml.safe_dump(platform_spec(spec, stores_secret), sort_keys=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    console.print(
        f"Compiled {len(pipeline.steps)} steps of {pipeline.name!r} to {output} (image "
        f"{target.image})",
        highlight=False,
    )


@click.group("step")
def step() -> None:
    """Run one step of a compiled pipeline (inside its container)."""


@step.command("exec")
@click.option("--executor-input", "executor_input", required=True, metavar="JSON",
              help="KFP's ExecutorInput ({{$}} in the compiled pipeline).")  # fmt: skip
@click.option("--step", "step_id", required=True, metavar="NAME", help="The step to run.")
@click.option("--pipeline-file", default=DEFAULT_PIPELINE_FILE, show_default=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="The pipeline file, relative to the working directory (/app in the image).")
@click.option("--pipeline", "attribute", default=None, metavar="NAME",
              help="Which Pipeline object of the file, when it defines several.")
@click.option("--code-fingerprint", default=None, metavar="SHA256",
              help="The step's code fingerprint at compile time; a different one is refused.")
@click.option("--run-name", default=None, metavar="NAME",
              help="The run's name for lineage ({{$.pipeline_job_name}} when compiled).")
@handle_errors
def step_exec(
    executor_input: str,
    step_id: str,
    pipeline_file: Path,
    attribute: str | None,
    code_fingerprint: str | None,
    run_name: str | None,
) -> None:
    """Run STEP from KFP's ExecutorInput and write its ExecutorOutput.

    Lineage goes to the metadata store at LOOPLINE_DB_URL when it is set and reachable.
    Exit codes: 0 succeeded, 1 the step failed, 3 a validation gate said no.
    """
    from loopline.pipeline.kubeflow import ExecutorInput, StepExec, execute_step
    from loopline.pipeline.loader import load_pipeline

    parsed = ExecutorInput.parse(executor_input)
    pipeline = load_pipeline(pipeline_file, attribute=attribute)
    run = run_name or f"{pipeline.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    log = sys.stderr
    with _stores(log) as (metadata, artifacts, trust):
        job = StepExec(
            step_id=step_id,
            run_name=run,
            code_fingerprint=code_fingerprint,
            metadata=metadata,
            artifacts=artifacts,
            trust=trust,
        )
        result = execute_step(pipeline, parsed, job, log)
    if result.ok:
        log.write(f"step {step_id}: succeeded; outputs: {', '.join(result.output.artifacts)}\n")
        return
    log.write(f"step {step_id}: failed: {result.error}\n")
    raise SystemExit(EXIT_BLOCKED if result.gate else EXIT_FAILED)


@contextlib.contextmanager
def _stores(log: TextIO) -> Iterator[tuple[MetadataStore | None, ArtifactStore | None, Trust]]:
    """The metadata and artifact stores and the trust from the settings when LOOPLINE_DB_URL
    is set and the store answers; (None, None, trust) otherwise, said in the log."""
    from loopline.platform import Platform

    with Platform.from_env() as platform:
        trust = platform.trust
        if not os.environ.get("LOOPLINE_DB_URL"):
            log.write("lineage off: LOOPLINE_DB_URL is not set\n")
            yield None, None, trust
            return
        try:
            metadata = platform.metadata
        except Exception as exc:  # drivers raise their own errors (sqlalchemy, psycopg)
            log.write(f"lineage off: the metadata store is not reachable: {exc}\n")
            yield None, None, trust
            return
        log.write(f"lineage on: {platform.settings.db_url.rsplit('@', 1)[-1]}\n")
        yield metadata, platform.artifacts, trust


@click.command("submit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--host", required=True, metavar="URL",
              help="The KFP endpoint, e.g. http://localhost:8080.")  # fmt: skip
@click.option("--run-name", default=None, metavar="NAME",
              help="The run's display name (default: PIPELINE-<UTC time>).")  # fmt: skip
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="A pipeline parameter (repeatable), checked against the compiled pipeline.")
@click.option("--pipeline-name", default=None, metavar="NAME",
              help="Name of the pipeline on KFP (default: pipelineInfo.name).")  # fmt: skip
@click.option("--experiment-id", default=None, metavar="ID",
              help="The experiment the run belongs to (default: KFP's Default).")  # fmt: skip
@click.option("--namespace", default=None, metavar="NS",
              help="The Kubeflow profile namespace (multi-user installations).")  # fmt: skip
@click.option("--token-file", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A file holding a bearer token for the endpoint.")  # fmt: skip
@json_option
@handle_errors
def submit(
    file: Path,
    host: str,
    run_name: str | None,
    params: tuple[str, ...],
    pipeline_name: str | None,
    experiment_id: str | None,
    namespace: str | None,
    token_file: Path | None,
    as_json: bool,
) -> None:
    """Upload the compiled pipeline FILE to Kubeflow Pipelines and start a run of it."""
    from loopline.pipeline.kubeflow import KfpClient

    token = token_file.read_text(encoding="utf-8").strip() if token_file else None
    if token_file is not None and not token:
        raise InvalidInputError(f"--token-file {str(token_file)!r} is empty.")
    package = file.read_bytes()
    name = run_name or f"{file.stem}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    with KfpClient(host, token=token, namespace=namespace) as client:
        run = client.submit(
            package,
            run_name=name,
            params=parse_params(params),
            pipeline_name=pipeline_name,
            experiment_id=experiment_id,
        )
    if as_json:
        print_json(
            {
                "pipeline_id": run.pipeline_id,
                "pipeline_version_id": run.version_id,
                "run_id": run.run_id,
                "url": run.url,
            }
        )
    else:
        console.print(f"run {run.run_id} started: {run.url}", highlight=False)
