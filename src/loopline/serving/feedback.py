"""The feedback endpoint's body: ground-truth labels by request id."""

from __future__ import annotations

import time
from typing import Any

from loopline.bundle import coerce_array
from loopline.errors import InvalidInputError
from loopline.serving.model_table import Entry
from loopline.serving.prediction_log import LogRecord


def feedback_records(body: Any, entry: Entry) -> list[LogRecord]:
    """Parse ``{"request_id", "label"|"labels"}`` or ``{"feedback": [...]}``."""
    if isinstance(body, dict) and "feedback" in body:
        items = body["feedback"]
        if not isinstance(items, list) or not items:
            raise InvalidInputError("Field 'feedback' must be a non-empty list of objects.")
    else:
        items = [body]
    spec = entry.served.model.signature.output(entry.served.model.methods[0])
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidInputError(
                f"feedback[{i}] must be an object with request_id and label(s)."
            )
        rid = item.get("request_id")
        if not isinstance(rid, str) or not rid:
            raise InvalidInputError(f"feedback[{i}].request_id must be a non-empty string.")
        if ("label" in item) == ("labels" in item):
            raise InvalidInputError(f"feedback[{i}] needs exactly one of 'label' or 'labels'.")
        values = [item["label"]] if "label" in item else item["labels"]
        if not isinstance(values, list) or not values:
            raise InvalidInputError(f"feedback[{i}].labels must be a non-empty list (one per row).")
        labels = coerce_array(type(spec)("label", spec.dtype, spec.shape), values)
        if labels.ndim != len(spec.shape):
            raise InvalidInputError(f"feedback[{i}] labels must have shape {list(spec.shape)}.")
        out.append(
            LogRecord(
                rid,
                time.time(),
                entry.served.name,
                entry.served.version,
                len(labels),
                {"label": {"label": labels}},
            )
        )
    return out
