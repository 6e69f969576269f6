"""Registry references as a model server's source: what ``loopline serve name@alias…`` loads
at start, and what ``POST /v2/repository/models/NAME/load`` loads while serving.

Every load goes through the registry and its digest: the reference resolves to a version
whose artifact must be live and have a recorded digest, and the bytes are checked against it
with the operator's trust. A load request for NAME with no parameters re-resolves the
reference the server was started with for NAME (``taxi@champion`` picks up a moved alias),
else NAME's latest version; ``parameters.version`` or ``parameters.alias`` choose another.
Workers load by version (:class:`~loopline.serving.repository.LoadSpec`), never by alias,
so a moving alias cannot make them disagree.

It lives in the CLI layer because it builds the platform from settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from loopline.errors import InvalidInputError, NotFoundError
from loopline.serving import LoadParameters, LoadSpec, ServedModel
from loopline.types import ModelRef, check_name

if TYPE_CHECKING:
    from loopline.bundle import Trust
    from loopline.platform import Platform
    from loopline.registry import ResolvedModel
    from loopline.settings import Settings


class RegistrySource:
    """The registry as a :class:`~loopline.serving.repository.ModelSource`.

    Args:
        settings: the stores to open (a platform per call, so each worker opens its own).
        trust: the operator's trust for loading.
        refs: the references the server was started with, in order.
        batching: serve loaded models with adaptive batching.
    """

    def __init__(
        self, settings: Settings, trust: Trust, refs: Sequence[str], *, batching: bool = False
    ) -> None:
        self.settings = settings
        self.trust = trust
        self.refs = list(refs)
        self.batching = batching
        self._started: dict[str, str] = {}
        for text in self.refs:
            self._started.setdefault(ModelRef.parse(text).name, text)

    def describe(self) -> str:
        return "the model registry"

    def names(self) -> list[str]:
        return list(self._started)

    def resolve(self, name: str, parameters: LoadParameters) -> LoadSpec:
        check_name("Model", name)
        if parameters.version is not None:
            ref = ModelRef(name, version=int(parameters.version))
        elif parameters.alias is not None:
            ref = ModelRef(name, alias=check_name("Alias", parameters.alias))
        else:
            ref = ModelRef.parse(self._started.get(name, name))
        with self._platform() as platform:
            resolved = self._resolved(platform, str(ref))
        aliases = (resolved.alias,) if resolved.alias else ()
        return LoadSpec(resolved.name, str(resolved.version), aliases)

    def load(self, spec: LoadSpec) -> ServedModel:
        with self._platform() as platform:
            ref = f"{spec.name}/{spec.version}"
            return self._load(platform, ref, self._resolved(platform, ref), spec.aliases)

    def load_all(self) -> list[ServedModel]:
        """The references the server starts with, loaded (one platform for all); the first
        answers its name's unversioned paths."""
        served = []
        with self._platform() as platform:
            for i, text in enumerate(self.refs):
                resolved = self._resolved(platform, text, started=True)
                aliases = (resolved.alias,) if resolved.alias else ()
                served.append(self._load(platform, text, resolved, aliases, default=i == 0))
        return served

    def _platform(self) -> Platform:
        from loopline.platform import Platform

        return Platform(self.settings)

    def _resolved(self, platform: Platform, text: str, *, started: bool = False) -> ResolvedModel:
        try:
            resolved = platform.registry.resolve(ModelRef.parse(text))
        except NotFoundError as exc:
            if not started or not Path(text).exists():
                raise
            raise NotFoundError(
                f"{exc} (A folder {text!r} exists here, but a reference is never read "
                f"from a folder; to serve it as a model directory write ./{text} with "
                "--expected-digest or --allow-unverified.)"
            ) from None
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
        return resolved

    def _load(
        self,
        platform: Platform,
        text: str,
        resolved: ResolvedModel,
        aliases: tuple[str, ...],
        *,
        default: bool = False,
    ) -> ServedModel:
        from loopline.bundle import load_model

        artifact = resolved.artifact
        with platform.artifacts.open_local(artifact.uri) as local:
            model = load_model(local, expected_digest=artifact.digest, trust=self.trust)
        return ServedModel(
            resolved.name,
            str(resolved.version),
            model,
            aliases=aliases,
            batching=self.batching,
            default=default,
        )


__all__ = ["RegistrySource"]
