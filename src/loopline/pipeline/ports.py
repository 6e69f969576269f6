"""``Input[T]`` and ``Output[T]``: port annotations at definition time, handles at run time.

A component declares ``data: Input[Examples]`` and ``model: Output[Model]``. When the step
runs it receives an ``Input`` whose ``path`` is a local, read-only directory holding the
artifact's bytes, and an ``Output`` whose ``path`` is an empty staging directory to write into.
Whatever the step writes becomes visible only after it returns and the runner publishes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Generic, TypeVar

from loopline.pipeline.artifact_types import ArtifactType
from loopline.types import Json

T = TypeVar("T", bound=ArtifactType)


@dataclass(frozen=True)
class Input(Generic[T]):
    """A published artifact a step reads."""

    id: int
    type_name: str
    uri: str
    path: Path
    digest: str | None
    name: str | None
    properties: Mapping[str, Json] = field(default_factory=lambda: MappingProxyType({}))


@dataclass
class Output(Generic[T]):
    """An artifact a step writes: files under ``path``, facts in ``properties``."""

    type_name: str
    uri: str
    path: Path
    name: str
    properties: dict[str, Json] = field(default_factory=dict)
