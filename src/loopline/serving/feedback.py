"""The feedback endpoint: ground-truth labels by request id, and the answer once logged.

A feedback body's records are offered to the feedback log in order; the first one the log
refuses stops the rest, so what was logged is always a prefix (``feedback[0]`` up to the
refused one). The answer is 200 ``{"accepted", "dropped": 0}`` when all were logged; 503 with
a ``Retry-After`` and an ``error`` naming the cause (the log's buffer is full until its next
write, its last write failed, or the server is shutting down) and the first item not logged;
or 413 when one item alone is more than the log buffers at most.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson

from loopline.bundle import coerce_array
from loopline.errors import InvalidInputError
from loopline.serving.model_table import Entry
from loopline.serving.prediction_log import LogRecord, Refusal, SegmentWriter

Headers = list[tuple[bytes, bytes]]


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


def log_feedback(
    records: Sequence[LogRecord], writer: SegmentWriter
) -> tuple[int, bytes, Headers]:
    """Offer ``records`` to ``writer`` in order; the answer: (status, JSON body, headers)."""
    accepted = 0
    for i, record in enumerate(records):
        refusal = writer.admit(record)
        if refusal is not None:
            dropped = sum(r.rows for r in records[i:])
            return _refused(i, refusal, accepted, dropped)
        accepted += record.rows
    return 200, orjson.dumps({"accepted": accepted, "dropped": 0}), []


def _refused(
    index: int, refusal: Refusal, accepted: int, dropped: int
) -> tuple[int, bytes, Headers]:
    item = f"feedback[{index}] and after were not logged" if index else "Nothing was logged"
    if refusal.retry_after is None:
        message = f"{item}: {refusal.reason}; send the labels in smaller parts."
        return 413, orjson.dumps({"error": message, "accepted": accepted, "dropped": dropped}), []
    message = f"{item}: {refusal.reason}; send them again after {refusal.retry_after} s."
    body = orjson.dumps({"error": message, "accepted": accepted, "dropped": dropped})
    return 503, body, [(b"retry-after", str(refusal.retry_after).encode())]
