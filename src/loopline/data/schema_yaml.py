"""The schema as a human-editable YAML file (``loopline.schema/v1``).

```yaml
format: loopline.schema/v1
features:
  fare:
    type: float
    min_fraction: 1.0
    range: [0.0, 500.0]          # optional, numbers only
    drift:
      - {metric: normalized_wasserstein, threshold: 0.1, unit: reference_std}
    skew:
      - {metric: normalized_wasserstein, threshold: 0.2}
  company:
    type: string
    domain: [Acme, Other]         # optional, strings only
    min_domain_mass: 0.999
```

``load_schema(path, base=inferred)`` reads a *partial* file: keys left out of a feature keep
``base``'s value, features left out keep ``base``'s feature, so a curated file only states
what it overrides and wins over the inferred schema. Threshold ``unit`` is optional; when
given it must be the metric's unit, or ``js_distance_ln`` (Evidently's JS), which is converted.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import yaml

from loopline.data.profile import DType
from loopline.data.profile_json import atomic_write
from loopline.data.schema import FeatureSchema, Schema, Threshold
from loopline.errors import InvalidInputError

FORMAT = "loopline.schema/v1"
_KEYS = {"type", "min_fraction", "domain", "min_domain_mass", "range", "drift", "skew"}


def schema_to_dict(schema: Schema) -> dict[str, Any]:
    feats: dict[str, Any] = {}
    for f in schema.features:
        d: dict[str, Any] = {"type": f.dtype.value, "min_fraction": f.min_fraction}
        if f.domain is not None:
            d["domain"] = list(f.domain)
            d["min_domain_mass"] = f.min_domain_mass
        if f.range_min is not None or f.range_max is not None:
            d["range"] = [f.range_min, f.range_max]
        d["drift"] = [_threshold(t) for t in f.drift]
        d["skew"] = [_threshold(t) for t in f.skew]
        feats[f.name] = d
    return {"format": FORMAT, "features": feats}


def _threshold(t: Threshold) -> dict[str, Any]:
    return {"metric": t.metric.value, "threshold": t.value, "unit": t.metric.unit}


def dump_schema(schema: Schema, path: str | os.PathLike[str] | None = None) -> str:
    """The schema as YAML text; also written atomically to ``path`` when given."""
    text = yaml.safe_dump(schema_to_dict(schema), sort_keys=False, allow_unicode=True)
    if path is not None:
        atomic_write(Path(path), text)
    return text


def load_schema(path: str | os.PathLike[str], base: Schema | None = None) -> Schema:
    """Read a schema file; keys it leaves out come from ``base`` (e.g. the inferred schema).

    Raises:
        InvalidInputError: the file is missing, not YAML, or breaks a schema rule; the
            message names the feature and key.
    """
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"There is no schema file at {str(p)!r}; check the path.")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"The schema file {str(p)!r} is not valid YAML: {exc}") from exc
    return schema_from_dict(data, base=base, source=str(p))


def schema_from_dict(data: Any, base: Schema | None = None, source: str = "schema") -> Schema:
    if not isinstance(data, dict) or not isinstance(data.get("features"), dict):
        raise InvalidInputError(f"{source} needs a 'features' mapping of feature name to settings.")
    if data.get("format", FORMAT) != FORMAT:
        raise InvalidInputError(
            f"{source} has format {data.get('format')!r}; this loopline reads {FORMAT!r}."
        )
    base = base or Schema()
    given = data["features"]
    out: list[FeatureSchema] = []
    for f in base.features:
        out.append(_feature(f.name, given[f.name], f, source) if f.name in given else f)
    for name, body in given.items():
        if base.get(str(name)) is None:
            out.append(_feature(str(name), body, None, source))
    return Schema(tuple(out))


def _feature(name: str, body: Any, base: FeatureSchema | None, source: str) -> FeatureSchema:
    where = f"{source}: feature {name!r}"
    if not isinstance(body, dict):
        raise InvalidInputError(f"{where} must be a mapping of settings, not {body!r}.")
    unknown = sorted(set(body) - _KEYS)
    if unknown:
        raise InvalidInputError(f"{where} has unknown keys {unknown}; allowed: {sorted(_KEYS)}.")
    if base is None and "type" not in body:
        raise InvalidInputError(f"{where} needs a 'type' (int, float, string or bool).")
    try:
        changes: dict[str, Any] = {}
        if "type" in body:
            changes["dtype"] = DType(body["type"])
        if "min_fraction" in body:
            changes["min_fraction"] = float(body["min_fraction"])
        if "min_domain_mass" in body:
            changes["min_domain_mass"] = float(body["min_domain_mass"])
        if "domain" in body:
            dom = body["domain"]
            changes["domain"] = None if dom is None else tuple(str(v) for v in dom)
        if "range" in body:
            rng = body["range"]
            if rng is None:
                changes["range_min"] = changes["range_max"] = None
            else:
                lo, hi = rng
                changes["range_min"] = None if lo is None else float(lo)
                changes["range_max"] = None if hi is None else float(hi)
        for key in ("drift", "skew"):
            if key in body:
                changes[key] = tuple(
                    Threshold.of(t["metric"], t.get("threshold"), t.get("unit"))
                    for t in body[key] or ()
                )
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc}") from exc
    except (TypeError, ValueError, KeyError) as exc:
        raise InvalidInputError(f"{where} has a malformed value: {exc!r}.") from exc
    if base is None:
        return FeatureSchema(name=name, **changes)
    if "dtype" in changes and changes["dtype"] is not base.dtype:
        # A curated type change makes the inferred domain, range and drift thresholds
        # meaningless (a string domain on a float): keep only what does not depend on the
        # type — presence — and take everything else from the curated file or the defaults.
        changes.setdefault("min_fraction", base.min_fraction)
        return FeatureSchema(name=name, **changes)
    return dataclasses.replace(base, **changes)
