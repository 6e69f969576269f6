"""Every refusal of a definition's field carries that field as a structured ``field``: each
node of every kind's documents (the ones the fuzzers mutate) given each weird value, an
unknown key, or deleted, is parsed; when the message names a field, ``exc.field`` is that
field exactly as the message shows it (the control plane answers it as the JSON error's
``field``; nothing parses it back out of the message)."""

from __future__ import annotations

import copy
import math
import pickle
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

NAMES_A_FIELD = re.compile(r"^(?:(?:Deployment|AnalysisTemplate|Monitor|Trigger) f|F)ield (\S+)")
"""How a message names the field at fault: ``Deployment field spec.replicas = …``."""

VALUES: tuple[Any, ...] = (
    math.nan, -1, 10**30, True, "", "nl\n", "soon", "x" * 300, None, [], {}, {"a": 1}, [1],
)  # fmt: skip
Path = tuple[str | int, ...]
KINDS: list[tuple[str, Callable[[Any], Any], dict[str, Any]]] = [
    *((f"Deployment {d['metadata']['name']}", DeploymentSpec.from_dict, d) for d in DEPLOYMENTS),
    ("AnalysisTemplate", AnalysisTemplate.from_dict, TEMPLATE),
    ("Monitor", MonitorSpec.from_dict, MONITOR),
    ("Trigger", TriggerSpec.from_dict, trigger("/srv/project/pipeline.py")),
]


def _nodes(doc: Any, path: Path = ()) -> Iterator[Path]:
    yield path
    items: Any = doc.items() if isinstance(doc, dict) else ()
    if isinstance(doc, list):
        items = enumerate(doc)
    for key, value in items:
        yield from _nodes(value, (*path, key))


def _changed(doc: dict[str, Any], path: Path, value: Any, delete: bool = False) -> Any:
    out = copy.deepcopy(doc)
    node: Any = out
    for part in path[:-1]:
        node = node[part]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


def _variants(doc: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for path in _nodes(doc):
        where = ".".join(str(p) for p in path)
        for value in VALUES:
            if path:
                yield f"{where} = {value!r:.20}", _changed(doc, path, copy.deepcopy(value))
        if path and isinstance(path[-1], str):
            yield f"{where} deleted", _changed(doc, path, None, delete=True)
        node: Any = doc
        for part in path:
            node = node[part]
        if isinstance(node, dict):
            yield f"{where}.unknown added", _changed(doc, (*path, "unknown"), 1)


@pytest.mark.parametrize(("kind", "parse", "doc"), KINDS, ids=[k[0] for k in KINDS])
def test_every_refused_field_of_every_kind_is_carried_as_the_errors_field(
    kind: str, parse: Callable[[Any], Any], doc: dict[str, Any]
) -> None:
    named = 0
    for what, changed in _variants(doc):
        try:
            parse(changed)
        except InvalidDefinitionError as exc:
            message = str(exc)
            names = NAMES_A_FIELD.match(message)
            if names is None or names.group(1) == "(document)":
                assert exc.field is None, f"{kind}: {what}: {exc.field!r} for {message}"
                continue
            named += 1
            assert exc.field is not None, f"{kind}: {what}: no field for {message}"
            shown = message.removeprefix(message[: names.start(1)])
            assert shown.startswith(exc.field), f"{kind}: {what}: {exc.field!r} for {message}"
            after = shown[len(exc.field) : len(exc.field) + 1]
            assert after in (" ", ":", ""), f"{kind}: {what}: {exc.field!r} for {message}"
    assert named > 40  # the sweep reached the fields


def test_a_field_survives_pickling_and_defaults_to_none() -> None:
    exc = InvalidDefinitionError("Deployment field spec.replicas = -1 …", field="spec.replicas")
    back = pickle.loads(pickle.dumps(exc))
    assert (type(back), str(back), back.field) == (type(exc), str(exc), "spec.replicas")
    assert InvalidDefinitionError("no field").field is None
