"""Extract the HTTPRoute v1 schema that loopline ships from a Gateway API CRD file.

    python scripts/vendor_httproute_schema.py gateway.networking.k8s.io_httproutes.yaml

reads the CRD (``config/crd/standard/`` of kubernetes-sigs/gateway-api at a release tag),
takes ``spec.versions[name=v1].schema.openAPIV3Schema``, drops the ``description`` texts
(documentation, 90 % of the bytes; nothing validates against them) and writes it as sorted,
compact JSON to ``src/loopline/deploy/engines/kubernetes/schemas/httproute-v1.json``.
Record the tag, commit and the CRD file's sha256 in the README beside it.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml

OUT = (Path(__file__).resolve().parents[1]
       / "src/loopline/deploy/engines/kubernetes/schemas/httproute-v1.json")


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        # A property may itself be called "description"; only drop the documentation string.
        return {k: _strip(v) for k, v in node.items()
                if not (k == "description" and isinstance(v, str))}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def main(crd_path: str) -> None:
    raw = Path(crd_path).read_bytes()
    crd = yaml.safe_load(raw)
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = _strip(version["schema"]["openAPIV3Schema"])
    OUT.write_text(json.dumps(schema, sort_keys=True, separators=(",", ":")) + "\n")
    bundle = crd["metadata"]["annotations"].get("gateway.networking.k8s.io/bundle-version")
    print(f"wrote {OUT} from bundle {bundle}; CRD sha256 {hashlib.sha256(raw).hexdigest()}")  # noqa: T201


if __name__ == "__main__":
    main(sys.argv[1])
