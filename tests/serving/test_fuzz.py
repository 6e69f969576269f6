"""Fuzzing request bodies: no input ever yields a 5xx, a crash or a stack trace."""

from __future__ import annotations

import json
from typing import Any

import httpx
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ENDPOINTS = [
    "/v2/models/lr/infer",
    "/v2/models/lr/versions/2/infer",
    "/v2/models/rf/infer",
    "/v2/models/tab/infer",
    "/v1/models/lr:predict",
    "/v1/models/tab/labels/3:predict",
    "/invocations",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=8),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)
names = st.sampled_from(["input", "age", "fare", "city", "x", ""])
datatypes = st.sampled_from(
    ["FP64", "FP32", "INT64", "BOOL", "BYTES", "UINT8", "FP16", "BF16", "nope"]
)
shapes = st.lists(st.integers(-2, 40), min_size=0, max_size=3)
tensors = st.fixed_dictionaries(
    {
        "name": names,
        "shape": shapes,
        "datatype": datatypes,
        "data": st.one_of(
            st.lists(scalars, max_size=40),
            st.lists(st.lists(scalars, max_size=31), max_size=3),
            json_values,
        ),
    },
)
v2_bodies = st.fixed_dictionaries(
    {"inputs": st.lists(tensors, max_size=3)},
    optional={"id": json_values, "outputs": json_values, "parameters": json_values},
)
other_bodies = st.one_of(
    st.fixed_dictionaries({"instances": json_values}),
    st.fixed_dictionaries({"inputs": json_values}),
    st.fixed_dictionaries({"dataframe_split": json_values}),
    st.fixed_dictionaries({"dataframe_records": json_values}),
    st.fixed_dictionaries({"request_id": json_values, "labels": json_values}),
    json_values,
)


def _check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    body = orjson.loads(response.content)
    if response.status_code >= 400:
        assert "error" in body or "message" in body


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.one_of(v2_bodies, other_bodies), endpoint=st.sampled_from(ENDPOINTS))
def test_structured_garbage_never_yields_5xx(server: Any, body: Any, endpoint: str) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        _check(c.post(endpoint, content=json.dumps(body)))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    raw=st.binary(max_size=300), endpoint=st.sampled_from([*ENDPOINTS, "/v2/models/lr/feedback"])
)
def test_raw_bytes_never_yield_5xx(server: Any, raw: bytes, endpoint: str) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        _check(c.post(endpoint, content=raw))
