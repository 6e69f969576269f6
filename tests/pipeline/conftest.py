from __future__ import annotations

import importlib.util
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from loopline.artifacts.fs import FsspecArtifactStore
from loopline.metadata.store import MetadataStore
from loopline.metadata.urls import open_store
from loopline.pipeline.runner import LocalRunner


@dataclass
class Env:
    metadata: MetadataStore
    artifacts: FsspecArtifactStore
    runner: LocalRunner
    root: Path


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    md = open_store(f"sqlite:///{tmp_path / 'loopline.db'}")
    art = FsspecArtifactStore(str(tmp_path / "artifacts"))
    runner = LocalRunner(md, art, log_dir=tmp_path / "logs", max_workers=2, console=None)
    yield Env(md, art, runner, tmp_path)
    md.close()


@pytest.fixture
def write_module(tmp_path: Path) -> Callable[[str, str], ModuleType]:
    """Write Python source to a fresh module file and import it (a 'user project' file)."""

    def write(name: str, source: str) -> ModuleType:
        folder = tmp_path / "project"
        folder.mkdir(exist_ok=True)
        # A fresh file per version: rewriting one file within the same second, at the same
        # size, would let Python load the stale bytecode cached for the previous version.
        modname = f"{name}_{uuid.uuid4().hex[:8]}"
        path = folder / f"{modname}.py"
        path.write_text(textwrap.dedent(source))
        spec = importlib.util.spec_from_file_location(modname, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = module
        spec.loader.exec_module(module)
        return module

    return write
