"""The model-server process: ``python -m loopline.cli.serve_process MODEL_REF… [flags]``.

The composition root of one server: its arguments are a :class:`~loopline.serving.ServeCommand`
argv (:meth:`~loopline.serving.ServeCommand.to_argv`, the same flags as ``loopline serve``),
parsed by :meth:`~loopline.serving.ServeCommand.from_argv` without click. It loads the models
(registry references through the platform built from the ``LOOPLINE_*`` settings, checked
against the registry's digest; or model directories written as paths, checked against
``--expected-digest`` or served unverified with ``--allow-unverified``, said loudly) with the
operator's trust (``LOOPLINE_TRUSTED_LOADERS``, ``LOOPLINE_TRUSTED_TYPES``) and runs the
server. ``loopline serve`` (the click front end) builds a
``ServeCommand`` and calls :func:`serve` here too, so both share one code path.

It lives in the CLI layer because resolving a registry reference needs the platform, which
sits above serving. The local deploy engine and InfraValidator start it as a process
(``ServeCommand.process_argv``), so the pid the engine records is the server's supervisor.
"""

from __future__ import annotations

import logging
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from loopline.errors import (
    InvalidInputError,
    LooplineError,
)
from loopline.serving import ServeCommand, ServedModel, ServerHandle
from loopline.types import ModelRef

if TYPE_CHECKING:
    from loopline.bundle import Trust
    from loopline.serving import FolderRepository, RepositoryOptions
    from loopline.settings import Settings

ANNOUNCEMENT = "loopline serve: listening on {url} ({workers} workers)"
"""The first line a server prints to stdout once its port is bound (InfraValidator and the
tests read the URL from it); :data:`GRPC_ANNOUNCEMENT` follows on the same line when the
server serves gRPC."""
GRPC_ANNOUNCEMENT = "; gRPC on {target}"


def model_source(text: str) -> Path | ModelRef:
    """What a MODEL_REF names: a directory when written as a path (``./taxi/3``, ``../m``,
    ``/abs/m``, ``.``), else a registry reference — even when a folder of that name exists.

    Raises:
        InvalidInputError: ``text`` is neither (the message shows how to write a path).
    """
    if text in (".", "..") or text.startswith(("/", "./", "../")):
        return Path(text)
    try:
        return ModelRef.parse(text)
    except InvalidInputError as exc:
        raise InvalidInputError(
            f"MODEL_REF {text!r} is not a registry reference ({exc}) nor written as a path; "
            f"to serve a model directory write it as a path, e.g. ./{text}."
        ) from None


def load_models(command: ServeCommand, settings: Settings | None = None) -> list[ServedModel]:
    """The command's models, loaded: all directories, or all registry references.

    ``settings`` (default: from the environment) give the operator's trust and the stores.

    Raises:
        InvalidInputError: directories and references are mixed; ``--name``,
            ``--expected-digest`` or ``--allow-unverified`` is given for registry references;
            a directory has neither a digest to check nor ``--allow-unverified``.
        NotFoundError: a reference does not resolve.
        ConfigurationError: a trusted loader or type in the settings is not an exact name.
    """
    if settings is None:
        from loopline.settings import Settings

        settings = Settings.from_env()
    if command.repository is not None:
        return _repository_models(_folder(command, settings))
    sources = [model_source(m) for m in command.models]
    paths = [s for s in sources if isinstance(s, Path)]
    if len(paths) == len(sources):
        return _directory_models(paths, command, _trust(settings))
    if paths:
        raise InvalidInputError(
            f"MODEL_REFs {list(command.models)} mix model directories and registry references; "
            "serve either directories or references (name@alias, name/version)."
        )
    for flag, value in (
        ("--name", command.name),
        ("--expected-digest", command.expected_digest),
        ("--allow-unverified", command.allow_unverified or None),
    ):
        if value is not None:
            raise InvalidInputError(
                f"{flag} applies to model directories; registry references "
                f"{list(command.models)} are served under their registered name and checked "
                "against the registry's digest."
            )
    return _registry_models(command, settings)


def _trust(settings: Settings) -> Trust:
    from loopline.platform import build_trust

    return build_trust(settings)


def serve(command: ServeCommand) -> int:
    """Run the server of ``command`` until SIGTERM/SIGINT; return its exit code."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    def announce(handle: ServerHandle) -> None:
        line = ANNOUNCEMENT.format(url=handle.url, workers=handle.workers)
        if handle.grpc_target is not None:
            line += GRPC_ANNOUNCEMENT.format(target=handle.grpc_target)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    from loopline.settings import Settings

    settings = Settings.from_env()
    state_dir = Path(tempfile.mkdtemp(prefix="loopline-repository-"))  # 0700
    try:
        return command.run(
            lambda: load_models(command, settings),
            on_started=announce,
            repository=repository_options(command, settings, state_dir),
        )
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


def repository_options(
    command: ServeCommand, settings: Settings, state_dir: Path | None = None
) -> RepositoryOptions:
    """The model repository extension of ``command``'s server: its source (the
    ``--repository`` folder, or the registry for references), its token and the folder its
    workers share (``state_dir``).

    Raises:
        InvalidInputError: the token file is unreadable, readable by others or too short, or
            a token flag is given for model directories (they cannot be loaded at run time).
    """
    from loopline.serving import ModelSource, RepositoryOptions, read_token

    source: ModelSource | None
    if command.repository is not None:
        source = _folder(command, settings)
    elif command.models and all(isinstance(model_source(m), ModelRef) for m in command.models):
        from loopline.cli.registry_source import RegistrySource

        source = RegistrySource(
            settings, _trust(settings), command.models, batching=command.batching
        )
    else:
        source = None
        if command.repository_token_file is not None or command.repository_allow_unauthenticated:
            raise InvalidInputError(
                "--repository-token-file and --repository-allow-unauthenticated apply to a "
                "model repository (--repository DIR) or registry references; model "
                "directories are not loaded or unloaded while serving."
            )
    token = None
    if command.repository_token_file is not None:
        token = read_token(command.repository_token_file)
    return RepositoryOptions(
        source=source,
        token=token,
        allow_unauthenticated=command.repository_allow_unauthenticated,
        state_dir=state_dir,
        drain_timeout=command.graceful_timeout,
    )


def _folder(command: ServeCommand, settings: Settings) -> FolderRepository:
    from loopline.serving import FolderRepository

    assert command.repository is not None
    return FolderRepository(
        command.repository,
        _trust(settings),
        digests=command.repository_digests,
        allow_unverified=command.allow_unverified,
        batching=command.batching,
    )


def _repository_models(source: FolderRepository) -> list[ServedModel]:
    """The newest version of every model in the folder (a model that fails stops the start,
    naming it)."""
    from loopline.serving import LoadParameters

    return [source.load(source.resolve(name, LoadParameters())) for name in source.names()]


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


def _directory_models(
    paths: list[Path], command: ServeCommand, trust: Trust
) -> list[ServedModel]:
    from loopline.bundle import load_model

    if command.expected_digest is not None and len(paths) != 1:
        raise InvalidInputError(
            f"--expected-digest checks one model directory, but {len(paths)} are served; "
            "serve several versions by their registry references (name/version) instead."
        )
    if command.expected_digest is not None and command.allow_unverified:
        raise InvalidInputError(
            "--expected-digest and --allow-unverified contradict each other: the directory "
            "is either checked against the digest or served unverified; pass one."
        )
    if command.expected_digest is None and not command.allow_unverified:
        raise InvalidInputError(
            f"Model directory {str(paths[0])!r} has no digest to check it against, so anyone "
            "who can write it chooses the code this server runs. Serve the model by its "
            "registry reference (name/version or name@alias), pass --expected-digest "
            "sha256:<hex> (the registry's digest), or pass --allow-unverified to serve it "
            "unverified."
        )
    served = []
    for i, path in enumerate(paths):
        if command.allow_unverified:
            _warn_unverified(path)
        model = load_model(path, expected_digest=command.expected_digest, trust=trust)
        meta = model.manifest.metadata
        name = command.name or str(
            meta.get("name") or re.sub(r"[^A-Za-z0-9_.-]", "-", path.resolve().name)
        )
        version = str(meta.get("version") or (i + 1))
        served.append(
            ServedModel(name, version, model, batching=command.batching, default=i == 0)
        )
    return served


def _warn_unverified(path: Path) -> None:
    message = (
        f"WARNING: serving UNVERIFIED model directory {str(path.resolve())!r} "
        "(--allow-unverified): no registry digest was checked; whoever can write that "
        "directory chooses what this server loads."
    )
    sys.stderr.write(f"loopline serve: {message}\n")  # the server's (or replica's) log
    sys.stderr.flush()


def _registry_models(command: ServeCommand, settings: Settings) -> list[ServedModel]:
    from loopline.cli.registry_source import RegistrySource

    source = RegistrySource(settings, _trust(settings), command.models, batching=command.batching)
    return source.load_all()


if __name__ == "__main__":
    sys.exit(main())
