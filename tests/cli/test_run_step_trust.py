"""``loopline run`` builds the operator's trust only when a trust setting is made: without one,
steps get None (loopline's built-in trust) and a run whose steps load no model never imports
the bundle package (NumPy, PyYAML), which a cached re-run would otherwise pay for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loopline.errors import ConfigurationError
from loopline.platform import Platform
from loopline.settings import Settings
from tests.cli.conftest import REPO

PIPELINE = """
from loopline.pipeline import Dataset, Output, Pipeline, component


@component
def first(out: Output[Dataset]) -> None:
    (out.path / "x").write_text("0")


pipeline = Pipeline("one", [first()])
"""

# Runs the CLI in process, then says whether the bundle package was imported.
PROBE = """
import sys
from loopline.cli.main import main
sys.argv = ["loopline", "run", "pipeline.py", "--json"]
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
print("BUNDLE", "loopline.bundle" in sys.modules, file=sys.stderr)
"""


def _settings(base: Path, **extra: str) -> Settings:
    return Settings.from_env(
        {
            "LOOPLINE_DB_URL": f"sqlite:///{base}/metadata.db",
            "LOOPLINE_ARTIFACT_ROOT": str(base / "artifacts"),
            "LOOPLINE_HOME": str(base / "home"),
            **extra,
        }
    )


def _probe(tmp_path: Path, **extra: str) -> tuple[dict[str, Any], bool]:
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLINE_")}
    env.update(PYTHONPATH=str(REPO), **extra)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), "BUNDLE True" in proc.stderr


def test_without_a_trust_setting_steps_get_the_built_in_trust(tmp_path: Path) -> None:
    assert Platform(_settings(tmp_path)).step_trust is None


def test_a_trust_setting_is_handed_to_the_steps(tmp_path: Path) -> None:
    platform = Platform(_settings(tmp_path, LOOPLINE_TRUSTED_LOADERS="my_project.models:M"))
    trust = platform.step_trust
    assert trust is not None and trust.loaders == frozenset({"my_project.models:M"})


def test_a_malformed_trust_setting_is_refused_naming_it(tmp_path: Path) -> None:
    platform = Platform(_settings(tmp_path, LOOPLINE_TRUSTED_TYPES="numpy.*"))
    with pytest.raises(ConfigurationError, match="LOOPLINE_TRUSTED_LOADERS / LOOPLINE_TRUSTED"):
        platform.step_trust  # noqa: B018


def test_a_run_and_its_cached_rerun_import_no_bundle_without_a_trust_setting(
    tmp_path: Path,
) -> None:
    run, imported = _probe(tmp_path)
    assert run["status"] == "succeeded" and not imported
    rerun, imported = _probe(tmp_path)
    assert [s["cached"] for s in rerun["steps"]] == [True]
    assert not imported


def test_a_run_with_a_trust_setting_builds_the_trust(tmp_path: Path) -> None:
    run, imported = _probe(tmp_path, LOOPLINE_TRUSTED_TYPES="numpy.dtype")
    assert run["status"] == "succeeded" and imported
