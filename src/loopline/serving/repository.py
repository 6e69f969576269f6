"""Where a model server loads models from at run time: the sources of the model repository
extension, and its options.

A :class:`ModelSource` answers two questions for ``POST /v2/repository/models/NAME/load``:
which version of NAME to load (:meth:`ModelSource.resolve`, a :class:`LoadSpec`) and how to
load that version (:meth:`ModelSource.load`, a digest- and trust-checked
:class:`ServedModel`). Every worker of a server loads the same :class:`LoadSpec`
(:mod:`loopline.serving.repository_state`), so a spec names a version, never a moving
target such as an alias.

Sources: :class:`FolderRepository` here; the registry's (``RegistrySource``) is in the CLI
layer, which may build the platform. A server started with model directories has none.

- :class:`FolderRepository` — ``loopline serve --repository DIR``: one folder per model,
  one sub-folder per version holding a bundle (``DIR/NAME/VERSION/loopline-model.yaml``,
  VERSION an integer ≥ 1; other entries are ignored). A version is loaded only against its
  digest in an operator's digests file (``NAME/VERSION sha256:HEX`` lines) or, when the
  operator allows it, unverified (said in the log at each load).
"""

from __future__ import annotations

import hmac
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from loopline.errors import InvalidInputError, NotFoundError
from loopline.serving.options import ServedModel
from loopline.types import check_name, is_ascii_digits

if TYPE_CHECKING:
    from loopline.bundle import Trust

log = logging.getLogger(__name__)

MIN_TOKEN = 16
"""Characters a repository token has at least (``secrets.token_urlsafe(32)`` has 43)."""


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """One version of one model, as every worker loads it.

    Attributes:
        name: the served model name.
        version: the version to load (a registry version, or a version folder).
        aliases: extra names of that version in versioned paths (``/versions/champion``).
    """

    name: str
    version: str
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_name("Model", self.name)
        check_name("Version", self.version)
        object.__setattr__(self, "aliases", tuple(self.aliases))
        for alias in self.aliases:
            check_name("Alias", alias)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "aliases": list(self.aliases)}

    @classmethod
    def from_json(cls, data: object) -> LoadSpec:
        """The spec of :meth:`to_json`'s document.

        Raises:
            InvalidInputError: the document is not one.
        """
        if not isinstance(data, dict) or set(data) != {"name", "version", "aliases"}:
            raise InvalidInputError(f"{data!r} is not a load spec (name, version, aliases).")
        aliases = data["aliases"]
        if not isinstance(aliases, list):
            raise InvalidInputError(f"Load spec aliases {aliases!r} are not a list.")
        return cls(data["name"], data["version"], tuple(aliases))


@dataclass(frozen=True, slots=True)
class LoadParameters:
    """What a load request may choose (its ``parameters``): a version, or for the registry an
    alias; neither means the source's default (the newest version folder, or the reference
    the server was started with)."""

    version: str | None = None
    alias: str | None = None


class ModelSource(Protocol):
    """Where ``POST /v2/repository/models/NAME/load`` finds NAME (see the module docstring).

    Both methods run in a worker thread, off the event loop.
    """

    def describe(self) -> str:
        """The source in an error message: ``the model repository '/srv/models'``."""
        ...

    def names(self) -> list[str]:
        """The models this source can load (listed by ``/v2/repository/index``)."""
        ...

    def resolve(self, name: str, parameters: LoadParameters) -> LoadSpec:
        """The version of ``name`` a load request means.

        Raises:
            NotFoundError: the source has no such model or version.
            InvalidInputError: a parameter does not apply to this source.
        """
        ...

    def load(self, spec: LoadSpec) -> ServedModel:
        """Load ``spec`` with the same digest and trust checks as at start.

        Raises:
            NotFoundError: the version is gone.
            InvalidInputError: a digest does not match, or the bundle is not trusted.
        """
        ...


@dataclass(frozen=True, slots=True)
class RepositoryOptions:
    """The model repository extension of one server (``ServerOptions.repository``).

    Attributes:
        source: where loads find models (None: the server can only list its models).
        token: load and unload need ``Authorization: Bearer <token>`` (401 otherwise).
        allow_unauthenticated: load and unload need no token (the operator chose it
            explicitly). With neither, load and unload are off (403).
        state_dir: the folder the server's workers share to converge on the same models
            (:mod:`loopline.serving.repository_state`); None for a single in-process app.
        poll_seconds: how often a worker looks for changes made through another worker.
        converge_timeout: how long a load or unload waits for every worker to apply it.
        drain_timeout: how long an unload waits for the model's requests in flight before
            it stops the model anyway.
        max_body_bytes: a larger repository request body gets 413.
    """

    source: ModelSource | None = None
    token: str | None = field(default=None, repr=False)
    allow_unauthenticated: bool = False
    state_dir: Path | None = None
    poll_seconds: float = 0.2
    converge_timeout: float = 120.0
    drain_timeout: float = 30.0
    max_body_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        if self.token is not None and self.allow_unauthenticated:
            raise InvalidInputError(
                "A repository token and allow_unauthenticated contradict each other: load "
                "and unload either need the token or need none; pass one."
            )
        if self.token is not None and len(self.token) < MIN_TOKEN:
            raise InvalidInputError(
                f"The repository token has {len(self.token)} characters; it needs at least "
                f"{MIN_TOKEN} (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')."
            )
        for name in ("poll_seconds", "converge_timeout", "drain_timeout"):
            if not getattr(self, name) > 0:
                raise InvalidInputError(
                    f"Repository option {name}={getattr(self, name)!r} must be > 0 seconds."
                )

    @property
    def mutable(self) -> bool:
        """Load and unload are on (with a token or explicitly without)."""
        return self.source is not None and (
            self.token is not None or self.allow_unauthenticated
        )

    def authorized(self, header: bytes | None) -> bool:
        """``header`` is ``Bearer <token>`` (compared in constant time), or no token is
        needed."""
        if self.token is None:
            return self.allow_unauthenticated
        if header is None or not header[:7].lower() == b"bearer ":
            return False
        return hmac.compare_digest(header[7:].strip(), self.token.encode())


def read_token(path: str | os.PathLike[str], flag: str = "--repository-token-file") -> str:
    """The token in the file ``path`` (surrounding whitespace dropped).

    Raises:
        InvalidInputError: the file cannot be read, others than its owner may read or write
            it, or the token is shorter than :data:`MIN_TOKEN`; the message names ``flag``.
    """
    try:
        mode = os.stat(path).st_mode
        token = Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{flag}: cannot read {str(path)!r}: {exc}.") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InvalidInputError(
            f"{flag}: {str(path)!r} has mode {mode & 0o777:o}; it must be readable by its owner "
            f"only (chmod 600 {path})."
        )
    if len(token) < MIN_TOKEN:
        raise InvalidInputError(
            f"{flag}: the token in {str(path)!r} has {len(token)} characters; it needs at least "
            f"{MIN_TOKEN} (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')."
        )
    return token


def read_digests(path: str | os.PathLike[str]) -> dict[tuple[str, str], str]:
    """``(name, version) → sha256:HEX`` from a digests file: ``NAME/VERSION sha256:HEX`` per
    line; blank lines and ``#`` comments are skipped.

    Raises:
        InvalidInputError: the file cannot be read, or a line is malformed (named by number).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            f"--repository-digests: cannot read {str(path)!r}: {exc}."
        ) from None
    out: dict[tuple[str, str], str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        ref, _, version = parts[0].partition("/")
        digest = parts[1] if len(parts) == 2 else ""
        if (
            len(parts) != 2
            or not _valid_name(ref)
            or not is_ascii_digits(version)
            or not digest.startswith("sha256:")
            or len(digest) != 71
        ):
            raise InvalidInputError(
                f"--repository-digests {str(path)!r} line {number} ({raw.strip()!r}) is not "
                "'NAME/VERSION sha256:<64 hex digits>'."
            )
        out[(ref, str(int(version)))] = digest
    return out


def _valid_name(text: str) -> bool:
    try:
        check_name("Model", text)
    except InvalidInputError:
        return False
    return True


class FolderRepository:
    """Models in a folder: ``root/NAME/VERSION/`` bundles (see the module docstring).

    Args:
        root: the repository folder.
        trust: the operator's trust for loading.
        digests: a digests file, read at each load (so versions can be added while serving);
            a version it does not list is refused.
        allow_unverified: load versions without a digest to check (logged at each load).
        batching: serve loaded models with adaptive batching.

    Raises:
        InvalidInputError: ``root`` is not a folder, or neither (or both) of ``digests`` and
            ``allow_unverified`` is given.
    """

    def __init__(
        self,
        root: Path,
        trust: Trust,
        *,
        digests: Path | None = None,
        allow_unverified: bool = False,
        batching: bool = False,
    ) -> None:
        if not root.is_dir():
            raise InvalidInputError(f"--repository {str(root)!r} is not a folder.")
        if (digests is None) == (not allow_unverified):
            raise InvalidInputError(
                f"The model repository {str(root)!r} needs --repository-digests FILE (the "
                "digest each NAME/VERSION must have) or --allow-unverified (anyone who can "
                "write the folder chooses the code this server runs); pass one of them."
            )
        self.root = root
        self.trust = trust
        self.digests = digests
        self.allow_unverified = allow_unverified
        self.batching = batching

    def describe(self) -> str:
        return f"the model repository {str(self.root)!r}"

    def names(self) -> list[str]:
        try:
            return sorted(
                p.name for p in self.root.iterdir() if p.is_dir() and _valid_name(p.name)
            )
        except OSError:
            return []

    def versions(self, name: str) -> list[int]:
        """The version folders of ``name``, in increasing order."""
        folder = self.root / name
        try:
            found = [p.name for p in folder.iterdir() if p.is_dir()]
        except OSError:
            return []
        return sorted(int(v) for v in found if is_ascii_digits(v) and int(v) >= 1)

    def resolve(self, name: str, parameters: LoadParameters) -> LoadSpec:
        if parameters.alias is not None:
            raise InvalidInputError(
                f"parameters.alias applies to registry references; {self.describe()} has "
                "version folders: pass parameters.version or nothing (the newest)."
            )
        versions = self.versions(name) if _valid_name(name) else []
        if not versions:
            raise NotFoundError(
                f"Model {name!r} is not in {self.describe()} (no folder {name}/VERSION/ with "
                f"VERSION ≥ 1); it holds {self.names()}."
            )
        if parameters.version is None:
            return LoadSpec(name, str(versions[-1]))
        if not is_ascii_digits(parameters.version) or int(parameters.version) not in versions:
            raise NotFoundError(
                f"Model {name!r} has no version {parameters.version!r} in {self.describe()}; "
                f"it has {versions}."
            )
        return LoadSpec(name, str(int(parameters.version)))

    def load(self, spec: LoadSpec) -> ServedModel:
        from loopline.bundle import load_model

        path = self.root / spec.name / spec.version
        expected = None
        if self.digests is not None:
            expected = read_digests(self.digests).get((spec.name, spec.version))
            if expected is None:
                raise InvalidInputError(
                    f"Model {spec.name!r} version {spec.version} is not listed in the digests "
                    f"file {str(self.digests)!r}; add '{spec.name}/{spec.version} sha256:…' "
                    "(its tree digest) to load it."
                )
        else:
            log.warning(
                "Loading UNVERIFIED model directory %r (--allow-unverified): no digest was "
                "checked; whoever can write that directory chooses what this server loads.",
                str(path.resolve()),
            )
        model = load_model(path, expected_digest=expected, trust=self.trust)
        return ServedModel(spec.name, spec.version, model, batching=self.batching)


__all__ = [
    "FolderRepository",
    "LoadParameters",
    "LoadSpec",
    "ModelSource",
    "RepositoryOptions",
    "read_digests",
    "read_token",
]
