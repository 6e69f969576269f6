"""The face of loopline.deploy.engines.kubernetes, pinned; importing it needs no client."""

from __future__ import annotations

import subprocess
import sys

import loopline.deploy.engines.kubernetes as k8s


def test_the_package_exports_exactly_its_face() -> None:
    assert sorted(k8s.__all__) == sorted([
        "INSTANCE_LABEL", "NAME_LABEL", "SUPPORTED_VERSIONS", "TRACK_LABEL", "GatewayRef",
        "Manifests", "ModelSource", "Problem", "Resources", "RolloutPosition", "check",
        "check_objects", "controlplane_manifests", "render", "render_manifests", "validate",
    ])  # fmt: skip


def test_rendering_imports_no_kubernetes_client_nor_validator() -> None:
    code = ("import sys, loopline.deploy.engines.kubernetes; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('kubernetes', 'kubernetes_validate', 'lightkube', 'jsonschema')))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    assert out.strip() == "[]"
