"""Shared pieces of the fuzz suites in ``tests/fuzz``: one hypothesis profile and structured
mutations of valid JSON documents.

The fuzz suites live in ``tests/fuzz/test_<surface>.py``, one module per surface (the model
server, spec parsing, the control-plane API, bundle manifests). They run in CI with the rest
of ``tests``: :data:`FUZZ` derandomizes hypothesis and keeps no example database, so a CI run
tries the same examples every time, and every suite sets its own bounded ``max_examples``.
An input that broke something once is pinned as an explicit test next to its suite.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
"""Reproducible in CI: the same examples every run, nothing read from or written to disk."""

Path = tuple[str | int, ...]

WEIRD_NUMBERS = (
    math.nan,
    math.inf,
    -math.inf,
    10**30,
    -(10**30),
    2**63,
    -1,
    0,
    1e308,
    -0.0,
    0.5,
    True,
    False,
)
WEIRD_TEXT = (
    "",
    " ",
    "nl\n",
    "a\nb",
    "tab\t",
    "nul\x00",
    "\x7f",
    "ünïcödé",
    "名前",
    "😀",
    "²",
    "١٢٣",
    "-1",
    "NaN",
    "Infinity",
    "1e400",
    "../../etc/passwd",
    "x" * 300,
    "25%",
    "-5%",
    "100000000000000000000%",
    "1e3s",
    "10m",
    "-10m",
    "{{tick}}",
    "result >= ",
    "__import__('os').system('true')",
)
weird_values: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(WEIRD_NUMBERS),
    st.sampled_from(WEIRD_TEXT),
    st.none(),
    st.just([]),
    st.just({}),
    st.just([None]),
    st.just({"": None}),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
)
"""Values that break parsers: NaN/Infinity, huge numbers, booleans where numbers go,
control and non-ASCII characters, empty containers and arbitrary scalars."""


def paths(doc: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every path to a value inside ``doc`` (dict keys and list indices), depth first."""
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from paths(value, (*prefix, i))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _weird(draw: st.DrawFn) -> Any:
    """A fresh copy of a weird value (the shared ``[]``/``{}`` are mutated later)."""
    return copy.deepcopy(draw(weird_values))


def _parent(doc: Any, path: Path) -> Any:
    for step in path[:-1]:
        doc = doc[step]
    return doc


@st.composite
def mutated(draw: st.DrawFn, valid: Any, max_mutations: int = 3) -> Any:
    """``valid`` after 1..``max_mutations`` structured mutations: a value replaced by a weird
    one, a number by a weird number, a key deleted, an unknown key added, or a value wrapped
    in a list."""
    doc = copy.deepcopy(valid)
    for _ in range(draw(st.integers(1, max_mutations))):
        candidates = [p for p in paths(doc) if p]
        if not candidates:
            return doc
        path = draw(st.sampled_from(candidates))
        parent = _parent(doc, path)
        key = path[-1]
        op = draw(st.sampled_from(["replace", "replace", "number", "delete", "extra", "wrap"]))
        if op == "number":  # a number becomes NaN, Infinity, huge, negative, a bool, …
            numbers = [p for p in candidates if _is_number(_parent(doc, p)[p[-1]])]
            if numbers:
                path = draw(st.sampled_from(numbers))
                parent, key = _parent(doc, path), path[-1]
                parent[key] = draw(st.sampled_from(WEIRD_NUMBERS))
            else:
                parent[key] = _weird(draw)
        elif op == "replace":
            parent[key] = _weird(draw)
        elif op == "delete":
            if isinstance(parent, dict):
                del parent[key]
            else:
                parent.pop(key)
        elif op == "extra":
            target = parent if isinstance(parent, dict) else parent[key]
            if isinstance(target, dict):
                target[draw(st.sampled_from(["extra", "", "nl\n", "😀"]))] = _weird(draw)
            else:
                parent[key] = _weird(draw)
        else:
            parent[key] = [parent[key]]
    return doc
