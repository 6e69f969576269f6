"""A spec error never echoes a huge value: every field of every kind's documents (the ones the
fuzzers mutate) holding a 1 MiB string, a list or mapping around one, or a mapping given a
1 MiB key, is refused with a message under 1 KiB that still names the field."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.fuzz.documents import DEPLOYMENTS, MONITOR, TEMPLATE, trigger

from loopline.deploy.analysis.template import AnalysisTemplate
from loopline.deploy.spec import DeploymentSpec
from loopline.errors import InvalidDefinitionError
from loopline.monitor.spec import MonitorSpec
from loopline.triggers.spec import TriggerSpec

MIB = 1 << 20
HUGE = "x" * MIB
NAMES_A_FIELD = re.compile(r"^((Deployment|AnalysisTemplate|Monitor|Trigger) f|F)ield \S")

Path = tuple[str | int, ...]
KINDS: list[tuple[str, Callable[[Any], Any], dict[str, Any]]] = [
    *((f"Deployment {d['metadata']['name']}", DeploymentSpec.from_dict, d) for d in DEPLOYMENTS),
    ("AnalysisTemplate", AnalysisTemplate.from_dict, TEMPLATE),
    ("Monitor", MonitorSpec.from_dict, MONITOR),
    ("Trigger", TriggerSpec.from_dict, trigger("/srv/project/pipeline.py")),
]


def _nodes(doc: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    yield path, doc
    items: Any = doc.items() if isinstance(doc, dict) else ()
    if isinstance(doc, list):
        items = enumerate(doc)
    for key, value in items:
        yield from _nodes(value, (*path, key))


def _dotted(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _with(doc: dict[str, Any], path: Path, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node: Any = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return out


def _variants(doc: dict[str, Any]) -> Iterator[tuple[str, Path, dict[str, Any]]]:
    for path, node in _nodes(doc):
        if path:
            yield "a 1 MiB string", path, _with(doc, path, HUGE)
            yield "a list of one", path, _with(doc, path, [HUGE])
            yield "a mapping of one", path, _with(doc, path, {"a": HUGE})
        if isinstance(node, dict):
            yield "a 1 MiB key", (*path, HUGE), _with(doc, (*path, HUGE), 1)
            yield "a 1 MiB key holding NaN", (*path, HUGE), _with(doc, (*path, HUGE), float("nan"))


@pytest.mark.parametrize(("kind", "parse", "doc"), KINDS, ids=[k[0] for k in KINDS])
def test_every_field_holding_a_huge_value_is_refused_in_under_a_kib_naming_the_field(
    kind: str, parse: Callable[[Any], Any], doc: dict[str, Any]
) -> None:
    refused = 0
    for what, path, changed in _variants(doc):
        try:
            parse(changed)
        except InvalidDefinitionError as exc:
            refused += 1
            message = str(exc)
            where = f"{kind}: {_dotted(path)[:80]} = {what}"
            assert len(message) < 1024, f"{where}: a message of {len(message)} characters"
            assert NAMES_A_FIELD.match(message), f"{where}: {message}"
            if what == "a 1 MiB string" and path[-1] not in ("metadata", "spec"):
                assert _dotted(path) in message, f"{where}: {message}"
    assert refused > 50  # the sweep reached the fields
