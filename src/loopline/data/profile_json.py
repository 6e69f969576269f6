"""Profiles as JSON files: lossless (floats are written by ``repr``; NaN is written as null).

Format ``loopline.profile/v1``: ``{"format", "num_rows", "features": [...]}``; each feature has
``name, dtype, num_rows, null_count`` and a ``numeric`` or ``categorical`` object whose keys are
the dataclass fields (``atoms``/``atom_counts`` only when kept; older files without them load
with ``None``). HyperLogLog registers are base64. Files are written to a temporary
name and renamed, so a crash never leaves a half-written profile at ``path``.
"""

from __future__ import annotations

import base64
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from loopline.data.profile import CategoricalStats, DType, FeatureProfile, NumericStats, Profile
from loopline.errors import InvalidInputError
from loopline.types import Json, JsonDict

FORMAT = "loopline.profile/v1"


def profile_to_dict(profile: Profile) -> JsonDict:
    return {
        "format": FORMAT,
        "num_rows": profile.num_rows,
        "features": [_feature_to_dict(f) for f in profile.features],
    }


def _f(x: float) -> float | None:
    return None if math.isnan(x) else x


def _feature_to_dict(f: FeatureProfile) -> JsonDict:
    out: JsonDict = {
        "name": f.name,
        "dtype": f.dtype.value,
        "num_rows": f.num_rows,
        "null_count": f.null_count,
    }
    if f.numeric is not None:
        s = f.numeric
        num: JsonDict = {
            "count": s.count,
            "nan_count": s.nan_count,
            "inf_count": s.inf_count,
            "zeros": s.zeros,
            "mean": _f(s.mean),
            "m2": s.m2,
            "min": _f(s.min),
            "max": _f(s.max),
            "edges": list(s.edges),
            "bucket_counts": list(s.bucket_counts),
            "bucket_sums": list(s.bucket_sums),
        }
        if s.atoms is not None and s.atom_counts is not None:
            num["atoms"] = list(s.atoms)
            num["atom_counts"] = list(s.atom_counts)
        out["numeric"] = num
    if f.categorical is not None:
        c = f.categorical
        out["categorical"] = {
            "count": c.count,
            "values": list(c.values),
            "counts": list(c.counts),
            "distinct": c.distinct,
            "total_length": c.total_length,
            "exact": c.exact,
            "count_error": c.count_error,
            "singletons": c.singletons,
            "hll": None if c.hll is None else base64.b64encode(c.hll).decode("ascii"),
            "hash_id": c.hash_id,
        }
    return out


def profile_from_dict(data: Json) -> Profile:
    """Rebuild a profile from :func:`profile_to_dict` output.

    Raises:
        InvalidInputError: the data is not a loopline profile or is damaged.
    """
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise InvalidInputError(
            f"This is not a {FORMAT} profile (format {got!r}); write it with save_profile()."
        )
    try:
        feats = tuple(_feature_from_dict(f) for f in data["features"])  # type: ignore[union-attr]
        return Profile(num_rows=int(data["num_rows"]), features=feats)  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"The profile JSON is damaged: {exc!r}.") from exc


def _nan(x: Any) -> float:
    return math.nan if x is None else float(x)


def _feature_from_dict(d: Any) -> FeatureProfile:
    num = cat = None
    if d.get("numeric") is not None:
        s = d["numeric"]
        num = NumericStats(
            count=int(s["count"]),
            nan_count=int(s["nan_count"]),
            inf_count=int(s["inf_count"]),
            zeros=int(s["zeros"]),
            mean=_nan(s["mean"]),
            m2=float(s["m2"]),
            min=_nan(s["min"]),
            max=_nan(s["max"]),
            edges=tuple(float(e) for e in s["edges"]),
            bucket_counts=tuple(int(c) for c in s["bucket_counts"]),
            bucket_sums=tuple(float(v) for v in s["bucket_sums"]),
            atoms=None if s.get("atoms") is None else tuple(float(v) for v in s["atoms"]),
            atom_counts=None
            if s.get("atom_counts") is None
            else tuple(int(c) for c in s["atom_counts"]),
        )
        if (num.atoms is None) != (num.atom_counts is None) or (
            num.atoms is not None and len(num.atoms) != len(num.atom_counts or ())
        ):
            raise ValueError(f"feature {d['name']!r} has atoms and atom counts that do not match")
        if not (len(num.bucket_counts) == len(num.bucket_sums) == len(num.edges) + 1):
            raise ValueError(f"feature {d['name']!r} has histogram arrays of the wrong length")
    if d.get("categorical") is not None:
        c = d["categorical"]
        cat = CategoricalStats(
            count=int(c["count"]),
            values=tuple(str(v) for v in c["values"]),
            counts=tuple(int(n) for n in c["counts"]),
            distinct=int(c["distinct"]),
            total_length=int(c["total_length"]),
            exact=bool(c["exact"]),
            count_error=int(c["count_error"]),
            singletons=int(c["singletons"]),
            hll=None if c["hll"] is None else base64.b64decode(c["hll"]),
            hash_id=c["hash_id"],
        )
    if (num is None) == (cat is None):
        raise ValueError(f"feature {d['name']!r} needs exactly one of numeric/categorical")
    return FeatureProfile(
        name=str(d["name"]),
        dtype=DType(d["dtype"]),
        num_rows=int(d["num_rows"]),
        null_count=int(d["null_count"]),
        numeric=num,
        categorical=cat,
    )


def profile_to_json(profile: Profile) -> str:
    return json.dumps(profile_to_dict(profile), allow_nan=False, ensure_ascii=False)


def profile_from_json(text: str | bytes) -> Profile:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidInputError(f"The profile is not valid JSON: {exc}.") from exc
    return profile_from_dict(data)


def save_profile(profile: Profile, path: str | os.PathLike[str]) -> Path:
    """Write ``profile`` as JSON to ``path`` atomically (temporary file + rename)."""
    return atomic_write(Path(path), profile_to_json(profile))


def load_profile(path: str | os.PathLike[str]) -> Profile:
    """Read a profile written by :func:`save_profile`.

    Raises:
        InvalidInputError: the file is missing, not JSON, or not a profile.
    """
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"There is no profile file at {str(p)!r}; check the path.")
    return profile_from_json(p.read_text(encoding="utf-8"))


def atomic_write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
