"""The composition root: the one place that builds concrete stores from settings.

Code below this layer receives explicit ``MetadataStore`` / ``ArtifactStore`` /
``ModelRegistry`` / ``Trust`` arguments and never reads the environment.
"""

from __future__ import annotations

from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING

from loopline.artifacts.fs import FsspecArtifactStore
from loopline.artifacts.store import ArtifactStore
from loopline.errors import ConfigurationError, InvalidInputError
from loopline.metadata.store import MetadataStore
from loopline.metadata.urls import open_store
from loopline.registry.registry import ModelRegistry
from loopline.settings import Settings

if TYPE_CHECKING:
    from loopline.bundle import Trust
    from loopline.deploy.engines.kubernetes.cluster_lightkube import LightkubeCluster


class Platform:
    """Lazily opened stores for one process, built from :class:`Settings`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @classmethod
    def from_env(cls) -> Platform:
        """Settings from the environment, then the platform."""
        return cls(Settings.from_env())

    @cached_property
    def metadata(self) -> MetadataStore:
        """The metadata store at ``LOOPLINE_DB_URL`` (migrated to the current schema)."""
        return open_store(self.settings.db_url)

    @cached_property
    def artifacts(self) -> ArtifactStore:
        """The artifact store at ``LOOPLINE_ARTIFACT_ROOT``."""
        return FsspecArtifactStore(self.settings.artifact_root)

    @cached_property
    def registry(self) -> ModelRegistry:
        """The model registry over the metadata and artifact stores."""
        return ModelRegistry(self.metadata, self.artifacts)

    @cached_property
    def trust(self) -> Trust:
        """What a loaded model bundle may run (``LOOPLINE_TRUSTED_LOADERS``,
        ``LOOPLINE_TRUSTED_TYPES``): given to every ``load_model`` of this process — the model
        server, pipeline steps (``StepContext.trust``) and monitors' references.

        Raises:
            ConfigurationError: an entry is not an exact name; the message names the setting.
        """
        return build_trust(self.settings)

    @property
    def step_trust(self) -> Trust | None:
        """:attr:`trust` when a setting extends loopline's built-in trust, else None — the same
        trust for ``LocalRunner`` and ``StepContext.trust``, without importing the bundle package
        (NumPy, PyYAML: ~0.1-0.3 s) in a run whose steps load no model, such as a cached re-run.

        Raises:
            ConfigurationError: an entry is not an exact name; the message names the setting.
        """
        if not (self.settings.trusted_loaders or self.settings.trusted_types):
            return None
        return self.trust

    def kubernetes_cluster(self, *, context: str | None = None) -> LightkubeCluster:
        """The cluster of the kubernetes engine: this pod's, through its service account, when
        ``KUBERNETES_SERVICE_HOST`` is set (in-cluster), else the kubeconfig's (``KUBECONFIG``,
        then ``~/.kube/config``; ``context``: one of its contexts). Namespace:
        ``LOOPLINE_KUBERNETES_NAMESPACE``, else the service account's or context's.

        Raises:
            DependencyMissingError: lightkube is not installed (the ``k8s`` extra).
            ConfigurationError: no usable service account or kubeconfig.
        """
        from loopline.deploy.engines.kubernetes.cluster_lightkube import LightkubeCluster

        namespace = self.settings.kubernetes_namespace or None
        if self.settings.in_cluster and context is None:
            return LightkubeCluster.in_cluster(namespace=namespace)
        return LightkubeCluster.from_kubeconfig(context=context, namespace=namespace)

    def close(self) -> None:
        """Close the metadata store if it was opened."""
        if "metadata" in self.__dict__:
            self.metadata.close()

    def __enter__(self) -> Platform:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def build_trust(settings: Settings) -> Trust:
    """The operator's :class:`~loopline.bundle.Trust` from ``settings``.

    Raises:
        ConfigurationError: an entry is not an exact name; the message names the setting.
    """
    from loopline.bundle import Trust

    try:
        return Trust(
            loaders=frozenset(settings.trusted_loaders), types=frozenset(settings.trusted_types)
        )
    except InvalidInputError as exc:
        raise ConfigurationError(
            f"LOOPLINE_TRUSTED_LOADERS / LOOPLINE_TRUSTED_TYPES: {exc}"
        ) from None
