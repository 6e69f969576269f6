"""Do two model answers agree? (The mirror's answer against the one the client got.)

Answers are compared by what they predict, not byte for byte: the first output of the
served Open Inference Protocol (V2) answer — the model's primary method, e.g. ``predict``
— against the output of that name in the mirror's answer, and ``predictions`` of MLflow's
``/invocations`` and KServe V1's ``:predict`` (also TF Serving's). Further outputs such as
``predict_proba`` are not compared: two different models never give the same
probabilities, and agreement is about the decision a client acts on. Labels, integers,
strings and booleans must be equal; floats may differ by a relative ``REL_TOL`` (two builds
of one model rarely agree to the last bit). Everything else in the answer (ids, model names
and versions, timings) is ignored.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

REL_TOL = 1e-6


def answers_agree(served: bytes, mirrored: bytes) -> bool | None:
    """Whether two JSON answer bodies predict the same; None when either is not the answer
    of a known protocol (not JSON, neither ``outputs`` nor ``predictions``)."""
    a = predictions(served)
    if not a:
        return None
    if mirrored == served:  # byte for byte: no second parse
        return True
    b = predictions(mirrored)
    if b is None:
        return None
    primary = next(iter(a))  # the served answer's first output: its prediction
    if primary not in b:
        return False
    x, y = a[primary], b[primary]
    # Python's == is exact and fast; it only errs by taking true for 1 and false for 0, so
    # it decides alone when neither answer has a boolean.
    if x == y and _no_booleans(served) and _no_booleans(mirrored):
        return True
    return values_agree(x, y)


def _no_booleans(body: bytes) -> bool:
    # ``find``, not ``in``: ``in`` tries the operand as an int first, and raises inside
    return body.find(b"true") < 0 and body.find(b"false") < 0


def predictions(body: bytes) -> dict[str, Any] | None:
    """What an answer predicts, by output name (``predictions`` for V1 and MLflow)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(doc) is not dict:
        return None
    outputs = doc.get("outputs")
    if type(outputs) is list:
        named: dict[str, Any] = {}
        for out in outputs:  # the usual answer: objects with a unique name and data
            if type(out) is not dict:
                break
            name = out.get("name")
            if type(name) is not str or name in named or "data" not in out:
                break
            named[name] = out["data"]
        else:
            return named
        found: dict[str, Any] = {}
        for i, out in enumerate(outputs):
            if not isinstance(out, dict):
                return None
            name = out.get("name")
            found[name if isinstance(name, str) else f"#{i}"] = out.get("data")
        return found
    if "predictions" in doc:
        return {"predictions": doc["predictions"]}
    return None


def values_agree(a: object, b: object) -> bool:
    """Equal labels, integers, strings, booleans; floats within ``REL_TOL``; recursively
    through lists and objects."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        if isinstance(a, int) and isinstance(b, int):
            return a == b
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=REL_TOL)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(values_agree(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_agree(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b
