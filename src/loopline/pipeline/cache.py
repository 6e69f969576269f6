"""Cache keys that are right, and explanations of why a step ran again.

Key = SHA-256 over: the component name, the code fingerprint (the step's source and the
project-local code it calls), the parameter values, the *content digests* of the inputs, the
output ports and types, and loopline's version. Each part is also stored separately on the
execution, so a miss can be explained part by part.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from loopline.types import Json


def _h(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CacheKey:
    """The key and the hashed parts it is made of."""

    key: str
    parts: Mapping[str, str]


def cache_key(
    *,
    component: str,
    code_fingerprint: str,
    parameters: Mapping[str, Json],
    input_digests: Mapping[str, str | None],
    outputs: Mapping[str, str],
    version: str,
) -> CacheKey:
    """Compute the cache key of one step execution."""
    parts = {
        "component": _h(component),
        "code": code_fingerprint,
        "parameters": _h(dict(parameters)),
        "inputs": _h(dict(input_digests)),
        "outputs": _h(dict(outputs)),
        "loopline": _h(version),
    }
    return CacheKey(key=_h(parts), parts=parts)


def explain(before: Mapping[str, Json], after: Mapping[str, Json]) -> list[str]:
    """Sentences saying which parts of the key differ between two executions' properties.

    Both mappings are execution properties as the runner writes them (``cache_parts``,
    ``parameters``, ``input_digests``, ``code_parts``, ``loopline_version``).
    """
    reasons: list[str] = []
    bp = _mapping(before.get("cache_parts"))
    ap = _mapping(after.get("cache_parts"))
    if bp.get("code") != ap.get("code"):
        bc, ac = _mapping(before.get("code_parts")), _mapping(after.get("code_parts"))
        changed = sorted(k for k in set(bc) | set(ac) if bc.get(k) != ac.get(k))
        detail = ", ".join(
            f"{k} ({'added' if k not in bc else 'removed' if k not in ac else 'edited'})"
            for k in changed
        )
        reasons.append(f"code changed: {detail or 'fingerprint differs'}")
    if bp.get("parameters") != ap.get("parameters"):
        bv, av = _mapping(before.get("parameters")), _mapping(after.get("parameters"))
        for k in sorted(set(bv) | set(av)):
            if bv.get(k, "<unset>") != av.get(k, "<unset>"):
                reasons.append(
                    f"parameter {k!r} changed: {bv.get(k, '<unset>')!r} → {av.get(k, '<unset>')!r}"
                )
    if bp.get("inputs") != ap.get("inputs"):
        bi, ai = _mapping(before.get("input_digests")), _mapping(after.get("input_digests"))
        for k in sorted(set(bi) | set(ai)):
            if bi.get(k) != ai.get(k):
                reasons.append(f"input {k!r} changed: {_short(bi.get(k))} → {_short(ai.get(k))}")
    if bp.get("outputs") != ap.get("outputs"):
        reasons.append("the step's output ports or their types changed")
    if bp.get("component") != ap.get("component"):
        reasons.append("the component name changed")
    if bp.get("loopline") != ap.get("loopline"):
        reasons.append(
            f"loopline version changed: {before.get('loopline_version')} → "
            f"{after.get('loopline_version')}"
        )
    return reasons


def _mapping(value: Json) -> Mapping[str, Json]:
    return value if isinstance(value, dict) else {}


def _short(digest: Json) -> str:
    if not isinstance(digest, str):
        return "none"
    return digest.split(":", 1)[-1][:12]
