"""The model-server process: ``python -m loopline.cli.serve_process MODEL_REF… [flags]``.

The composition root of one server: its arguments are a :class:`~loopline.serving.ServeCommand`
argv (:meth:`~loopline.serving.ServeCommand.to_argv`, the same flags as ``loopline serve``),
parsed by :meth:`~loopline.serving.ServeCommand.from_argv` without click. It loads the models
(model directories, or registry references through the platform built from the
``LOOPLINE_*`` settings) and runs the server. ``loopline serve`` (the click front end) builds a
``ServeCommand`` and calls :func:`serve` here too, so both share one code path.

It lives in the CLI layer because resolving a registry reference needs the platform, which
sits above serving. The local deploy engine and InfraValidator start it as a process
(``ServeCommand.process_argv``), so the pid the engine records is the server's supervisor.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from loopline.errors import InvalidInputError, LooplineError
from loopline.serving import ServeCommand, ServedModel, ServerHandle

ANNOUNCEMENT = "loopline serve: listening on {url} ({workers} workers)"
"""The first line a server prints to stdout once its port is bound (InfraValidator and the
tests read the URL from it)."""


def load_models(command: ServeCommand) -> list[ServedModel]:
    """The command's models, loaded: all directories, or all registry references.

    Raises:
        InvalidInputError: directories and references are mixed, or ``--name`` is given for
            registry references.
        NotFoundError: a reference does not resolve.
    """
    paths = [Path(m) for m in command.models]
    is_dir = [p.is_dir() for p in paths]
    if all(is_dir):
        return _directory_models(paths, command)
    if any(is_dir):
        raise InvalidInputError(
            f"MODEL_REFs {list(command.models)} mix model directories and registry references; "
            "serve either directories or references (name@alias, name/version)."
        )
    if command.name is not None:
        raise InvalidInputError(
            f"--name {command.name!r} applies to model directories; registry references "
            f"{list(command.models)} are served under their registered name."
        )
    return _registry_models(command)


def serve(command: ServeCommand) -> int:
    """Run the server of ``command`` until SIGTERM/SIGINT; return its exit code."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    def announce(handle: ServerHandle) -> None:
        sys.stdout.write(ANNOUNCEMENT.format(url=handle.url, workers=handle.workers) + "\n")
        sys.stdout.flush()

    return command.run(lambda: load_models(command), on_started=announce)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and serve; the process's exit code."""
    try:
        command = ServeCommand.from_argv(sys.argv[1:] if argv is None else argv)
    except InvalidInputError as exc:
        sys.stderr.write(f"loopline serve: error: {exc}\n")
        return 2
    try:
        return serve(command)
    except LooplineError as exc:
        sys.stderr.write(f"loopline serve: error: {exc}\n")
        return 1


def _directory_models(paths: list[Path], command: ServeCommand) -> list[ServedModel]:
    from loopline.bundle import load_model

    served = []
    for i, path in enumerate(paths):
        model = load_model(path)
        meta = model.manifest.metadata
        name = command.name or str(
            meta.get("name") or re.sub(r"[^A-Za-z0-9_.-]", "-", path.resolve().name)
        )
        version = str(meta.get("version") or (i + 1))
        served.append(
            ServedModel(name, version, model, batching=command.batching, default=i == 0)
        )
    return served


def _registry_models(command: ServeCommand) -> list[ServedModel]:
    from loopline.bundle import load_model
    from loopline.platform import Platform
    from loopline.types import ModelRef

    served = []
    with Platform.from_env() as platform:
        for i, text in enumerate(command.models):
            resolved = platform.registry.resolve(ModelRef.parse(text))
            artifact = resolved.artifact
            if artifact.state.value != "live":
                raise InvalidInputError(
                    f"Model {text!r} resolves to artifact {artifact.uri!r} in state "
                    f"{artifact.state.value!r}; only live artifacts can be served."
                )
            if artifact.digest is None:
                raise InvalidInputError(
                    f"Model {text!r} (artifact {artifact.uri!r}) has no recorded digest; "
                    "loopline serves only models whose digest the registry recorded."
                )
            with platform.artifacts.open_local(artifact.uri) as local:
                model = load_model(local, expected_digest=artifact.digest)
            aliases = (resolved.alias,) if resolved.alias else ()
            served.append(
                ServedModel(
                    resolved.name,
                    str(resolved.version),
                    model,
                    aliases=aliases,
                    batching=command.batching,
                    default=i == 0,
                )
            )
    return served


if __name__ == "__main__":
    sys.exit(main())
