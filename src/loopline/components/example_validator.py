"""ExampleValidator: anomalies against the schema, and drift against a previous span — a gate.

For every split of the statistics, ``loopline.data.validate`` lists the anomalies (missing
column, type change, out-of-domain value, low presence, new category, unexpected nulls, empty
split, …). With ``previous_statistics`` of an *earlier* span and the current ``examples``,
each split in ``drift_splits`` is re-profiled on the previous span's histogram edges and
compared with ``loopline.data.compare``: every distance carries its unit (JS distance base 2,
L∞ share, W1 / reference std, PSI in nats) and a feature drifts when a threshold of its schema
``drift`` list is reached.

Errors (and drift) block the run: the step raises GateFailedError, the run ends BLOCKED and the
full report is recorded on the execution (params ``anomalies``/``drift``). An explicit
override (``allow_anomalies=True`` with an ``override_reason``) lets the run continue; the
override is recorded on the ``ExampleAnomalies`` artifact (``overridden``, ``override_reason``)
and in ``anomalies.json``.
"""

from __future__ import annotations

import json
import logging
import math

from loopline.components.schema_gen import SCHEMA_FILE
from loopline.components.tables import split_path, splits_of
from loopline.data import (
    DriftReport,
    Severity,
    compare,
    load_profile,
    load_schema,
    profile_parquet,
    validate,
)
from loopline.errors import GateFailedError, InvalidInputError
from loopline.pipeline import (
    ExampleAnomalies,
    Examples,
    ExampleStatistics,
    Input,
    Output,
    Schema,
    StepContext,
    component,
)
from loopline.types import Json

REPORT_FILE = "anomalies.json"
_log = logging.getLogger(__name__)
_SHOWN = 10


def drift_to_json(report: DriftReport) -> dict[str, Json]:
    """A drift report as JSON: per feature the distances with units and the checks."""
    feats: list[Json] = []
    for f in report.features:
        feats.append(
            {
                "feature": f.feature,
                "kind": f.kind,
                "drifted": f.drifted,
                "reason": f.reason,
                "metrics": {
                    m.value: {"value": _num(v), "unit": m.unit} for m, v in f.metrics.items()
                },
                "checks": [
                    {
                        "metric": c.metric.value,
                        "unit": c.unit,
                        "value": _num(c.value),
                        "threshold": c.threshold,
                        "drifted": c.drifted,
                    }
                    for c in f.checks
                ],
            }
        )
    return {
        "mode": report.mode,
        "drifted_features": list(report.drifted_features),
        "features": feats,
    }


def _num(x: float) -> float | None:
    return x if math.isfinite(x) else None


def drift_messages(split: str, report: DriftReport) -> list[str]:
    """One sentence per drifted check, naming the metric, its unit and the threshold."""
    out = []
    for f in report.features:
        for c in f.checks:
            if c.drifted:
                out.append(
                    f"split {split!r}: feature {f.feature!r} drifted: {c.metric.value} = "
                    f"{c.value:.4g} {c.unit} >= threshold {c.threshold:g}"
                )
    return out


def require_validated(anomalies: Input[ExampleAnomalies] | None) -> None:
    """Raise GateFailedError unless ``anomalies`` passed or was overridden.

    Steps after the gate (Transform, Trainer) take the ``ExampleAnomalies`` as an optional
    input, so a blocked validator cancels them and their lineage shows the validation.
    """
    if anomalies is None:
        return
    passed = anomalies.properties.get("passed") == 1
    if not passed and not anomalies.properties.get("overridden"):
        raise GateFailedError(
            f"ExampleAnomalies {anomalies.id} neither passed nor was overridden; the data "
            "must not be used."
        )


@component(name="ExampleValidator")
def ExampleValidator(
    statistics: Input[ExampleStatistics],
    schema: Input[Schema],
    anomalies: Output[ExampleAnomalies],
    ctx: StepContext,
    examples: Input[Examples] | None = None,
    previous_statistics: Input[ExampleStatistics] | None = None,
    drift_splits: list[str] | None = None,
    allow_anomalies: bool = False,
    override_reason: str | None = None,
) -> None:
    """Validate every split; compare ``drift_splits`` (default ``["train"]``) with the
    previous span. Raise GateFailedError on any error unless ``allow_anomalies``."""
    if allow_anomalies and not (override_reason and override_reason.strip()):
        override_reason = "allow_anomalies=true (no reason given)"
    sch = load_schema(schema.path / SCHEMA_FILE)
    splits = splits_of(statistics.properties, statistics.path)
    found: dict[str, Json] = {}
    blocking: list[str] = []
    warnings = 0
    for split in splits:
        prof = load_profile(statistics.path / f"{split}.json")
        items = validate(prof, sch)
        found[split] = [
            {
                "feature": a.feature,
                "kind": a.kind.value,
                "severity": a.severity.value,
                "description": a.description,
            }
            for a in items
        ]
        for a in items:
            if a.severity is Severity.ERROR:
                blocking.append(f"split {split!r}: {a.kind.value}: {a.description}")
            else:
                warnings += 1
    drift: dict[str, Json] = {}
    drifted: set[str] = set()
    drift_note = None
    if previous_statistics is not None:
        prev_span = previous_statistics.properties.get("span")
        cur_span = statistics.properties.get("span")
        if prev_span is not None and prev_span == cur_span:
            drift_note = f"previous statistics are of the same span {cur_span}; no drift check"
        elif examples is None:
            raise InvalidInputError(
                "Drift against previous_statistics needs the current examples (to count them "
                "on the previous span's buckets); connect examples= as well."
            )
        else:
            for split in drift_splits or ["train"]:
                prev_file = previous_statistics.path / f"{split}.json"
                if split not in splits or not prev_file.is_file():
                    raise InvalidInputError(
                        f"Drift split {split!r} is not in both the current statistics {splits} "
                        "and the previous span's; set drift_splits to a split both have."
                    )
                reference = load_profile(prev_file)
                current = profile_parquet(split_path(examples.path, split), reference)
                report = compare(reference, current, sch, mode="drift")
                drift[split] = drift_to_json(report)
                drifted.update(report.drifted_features)
                blocking.extend(drift_messages(split, report))
    else:
        drift_note = "no previous span statistics; no drift check"
    passed = not blocking
    report_json: dict[str, Json] = {
        "passed": passed,
        "blocking": list(blocking),
        "anomalies": found,
        "drift": drift,
        "drift_note": drift_note,
        "previous_span": previous_statistics.properties.get("span")
        if previous_statistics
        else None,
        "span": statistics.properties.get("span"),
        "overridden": bool(blocking) and allow_anomalies,
        "override_reason": override_reason if blocking and allow_anomalies else None,
    }
    ctx.log_params(anomalies_blocking=len(blocking), anomalies_warnings=warnings)
    if blocking and not allow_anomalies:
        ctx.log_params(anomalies=found, drift=drift, blocking=list(blocking))
        shown = "; ".join(b.rstrip(".") for b in blocking[:_SHOWN])
        more = f" (and {len(blocking) - _SHOWN} more)" if len(blocking) > _SHOWN else ""
        raise GateFailedError(
            f"ExampleValidator found {len(blocking)} blocking anomal"
            f"{'y' if len(blocking) == 1 else 'ies'}: {shown}{more}. Fix the data or the "
            "schema, or rerun with --param allow_anomalies=true to override (recorded)."
        )
    if blocking:
        ctx.set_tags(anomalies_overridden="true")
        _log.warning("%d blocking anomalies overridden: %s", len(blocking), override_reason)
    (anomalies.path / REPORT_FILE).write_text(json.dumps(report_json, indent=2, sort_keys=True))
    anomalies.properties.update(
        passed=int(passed),
        blocking=len(blocking),
        warnings=warnings,
        drifted_features=list[Json](sorted(drifted)),
        overridden=bool(blocking) and allow_anomalies,
        override_reason=report_json["override_reason"],
        span=statistics.properties.get("span"),
    )
