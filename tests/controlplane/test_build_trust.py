"""The control plane built from settings hands the operator's trust to its monitors, and a
malformed trust setting stops it at start, naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopline.controlplane.build import build_controlplane
from loopline.errors import ConfigurationError
from loopline.platform import Platform
from loopline.settings import Settings


def _settings(base: Path, loaders: str) -> Settings:
    return Settings.from_env(
        {
            "LOOPLINE_DB_URL": f"sqlite:///{base}/metadata.db",
            "LOOPLINE_ARTIFACT_ROOT": str(base / "artifacts"),
            "LOOPLINE_HOME": str(base / "home"),
            "LOOPLINE_TRUSTED_LOADERS": loaders,
        }
    )


def test_the_monitors_of_a_built_control_plane_load_references_with_the_operators_trust(
    tmp_path: Path,
) -> None:
    with Platform(_settings(tmp_path, "my_project.models:Centroids")) as platform:
        service = build_controlplane(platform)
        assert service.monitors_ops is not None
        assert service.monitors_ops.trust == platform.trust
        assert platform.trust.loaders == frozenset({"my_project.models:Centroids"})


def test_a_trusted_loader_that_is_not_an_exact_name_stops_the_control_plane_at_start(
    tmp_path: Path,
) -> None:
    with Platform(_settings(tmp_path, "my_project.*")) as platform, pytest.raises(
        ConfigurationError, match=r"LOOPLINE_TRUSTED_LOADERS .*'my_project\.\*' is not an exact"
    ):
        build_controlplane(platform)
