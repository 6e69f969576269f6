"""``loopline run FILE``: run a pipeline file locally."""

from __future__ import annotations

import click

from loopline.cli.output import console, err_console, handle_errors, json_option, print_json
from loopline.errors import InvalidInputError
from loopline.pipeline.loader import load_pipeline
from loopline.pipeline.results import RunStatus
from loopline.pipeline.runner import LocalRunner
from loopline.platform import Platform
from loopline.types import Json

EXIT_FAILED = 1
EXIT_BLOCKED = 3


def parse_params(items: tuple[str, ...]) -> dict[str, Json]:
    """``k=v`` pairs; values are read as YAML scalars (``5`` → 5, ``true`` → True)."""
    out: dict[str, Json] = {}
    if not items:
        return out
    import yaml

    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(
                f"--param {item!r} is not of the form name=value, e.g. --param rows=500."
            )
        try:
            out[key] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            out[key] = raw
    return out


@click.command("run")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override a pipeline parameter (repeatable).",
)
@click.option("--no-cache", is_flag=True, help="Run every step even if a cached result exists.")
@click.option(
    "--pipeline",
    "attribute",
    default=None,
    metavar="NAME",
    help="Which Pipeline object of FILE to run, when it defines several.",
)
@json_option
@handle_errors
def run(
    file: str, params: tuple[str, ...], no_cache: bool, attribute: str | None, as_json: bool
) -> None:
    """Run the pipeline defined in FILE, recording every step in the metadata store.

    Exit codes: 0 succeeded, 1 a step failed, 3 a validation gate blocked the run.
    """
    pipeline = load_pipeline(file, attribute=attribute)
    with Platform.from_env() as platform:
        runner = LocalRunner(
            platform.metadata,
            platform.artifacts,
            log_dir=platform.settings.home / "logs",
            max_workers=platform.settings.max_workers,
            console=None if as_json else console,
            trust=platform.step_trust,
        )
        result = runner.run(pipeline, params=parse_params(params), cache=not no_cache, source=file)
    if as_json:
        print_json(
            {
                "id": result.run_id,
                "name": result.run_name,
                "pipeline": result.pipeline,
                "status": result.status.value,
                "steps": [
                    {
                        "name": s.step_id,
                        "status": s.state.value,
                        "cached": s.cached,
                        "seconds": round(s.seconds, 4),
                        "error": s.error,
                        "outputs": dict(s.outputs),
                    }
                    for s in result.steps.values()
                ],
            }
        )
    else:
        cached = sum(1 for s in result.steps.values() if s.cached)
        style = "green" if result.ok else "red"
        console.print(
            f"[{style}]{result.status.value}[/]: run {result.run_name} (id {result.run_id}), "
            f"{len(result.steps)} steps, {cached} from cache"
        )
        for s in result.steps.values():
            if s.error and s.state.value == "failed":
                err_console.print(f"  [red]{s.step_id}[/]: {s.error}")
        if not result.ok:
            console.print(f"Details: loopline runs show {result.run_id}")
    if result.status is RunStatus.BLOCKED:
        raise SystemExit(EXIT_BLOCKED)
    if not result.ok:
        raise SystemExit(EXIT_FAILED)
