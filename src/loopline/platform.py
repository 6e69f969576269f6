"""The composition root: the one place that builds concrete stores from settings.

Code below this layer receives explicit ``MetadataStore`` / ``ArtifactStore`` /
``ModelRegistry`` arguments and never reads the environment.
"""

from __future__ import annotations

from functools import cached_property
from types import TracebackType

from loopline.artifacts.fs import FsspecArtifactStore
from loopline.artifacts.store import ArtifactStore
from loopline.metadata.store import MetadataStore
from loopline.metadata.urls import open_store
from loopline.registry.registry import ModelRegistry
from loopline.settings import Settings


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
