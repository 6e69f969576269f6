"""The parameter template of a trigger's run: ``{{span}}``, ``{{alert.id}}``, ``{{span - 2}}``.

A tiny, safe language (no ``eval``, no attribute access on Python objects): a placeholder is
``{{ NAME }}``, ``{{ NAME.FIELD }}`` or either followed by ``+ N`` / ``- N`` (an integer).
Names are looked up in the event's variables (a JSON mapping). A value that is exactly one
placeholder keeps the variable's type (``"{{spans}}"`` renders the list ``[41, 42]``); a
placeholder inside other text is replaced by its text (``"span-{{span}}"`` → ``"span-42"``).
Lists and mappings of values are rendered element by element.

Templates are checked when a Trigger is applied (:func:`check_template`): a syntax error or a
name the trigger's ``on`` kind never provides is an InvalidDefinitionError naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from loopline.errors import InvalidDefinitionError, InvalidInputError, shown, shown_field
from loopline.types import Json

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
_EXPRESSION = re.compile(
    r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)"
    r"\s*(?:(?P<op>[+-])\s*(?P<number>\d{1,9}))?\s*$"
)


def _expressions(text: str) -> Iterator[tuple[str, str, int]]:
    """``(placeholder text, variable name, offset)`` of every placeholder in ``text``."""
    for m in _PLACEHOLDER.finditer(text):
        parsed = _EXPRESSION.match(m.group(1))
        if parsed is None:
            raise InvalidInputError(
                f"placeholder {shown(m.group(0))} is not NAME, NAME.FIELD or NAME ± INTEGER"
            )
        number = int(parsed.group("number") or 0)
        offset = -number if parsed.group("op") == "-" else number
        yield m.group(0), parsed.group("name"), offset
    rest = _PLACEHOLDER.sub("", text)
    if "{{" in rest or "}}" in rest:
        raise InvalidInputError(f"{shown(text)} has an unbalanced '{{{{' or '}}}}'")


def check_template(value: Json, allowed: frozenset[str], field: str) -> None:
    """Raise InvalidDefinitionError naming ``field`` when ``value`` has a malformed placeholder
    or names a variable outside ``allowed``."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            check_template(item, allowed, f"{field}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            check_template(item, allowed, f"{field}.{key}")
        return
    if not isinstance(value, str):
        return
    try:
        found = list(_expressions(value))
    except InvalidInputError as exc:
        raise InvalidDefinitionError(
            f"Trigger field {shown_field(field)} = {shown(value)} is invalid: {exc}, e.g. "
            "'{{span}}'.",
            field=shown_field(field),
        ) from None
    for _, name, _ in found:
        if name not in allowed:
            raise InvalidDefinitionError(
                f"Trigger field {shown_field(field)} = {shown(value)} is invalid: it names "
                f"{shown(name)}, which this trigger's event does not provide; known names: "
                f"{sorted(allowed)}.",
                field=shown_field(field),
            )


def _lookup(name: str, variables: Mapping[str, Json]) -> Json:
    head, _, tail = name.partition(".")
    if head not in variables:
        raise InvalidInputError(f"the event has no variable {head!r} (it has {sorted(variables)})")
    value = variables[head]
    if tail:
        if not isinstance(value, dict) or tail not in value:
            raise InvalidInputError(f"the event's {head!r} has no field {tail!r}")
        value = value[tail]
    return value


def _apply_offset(name: str, value: Json, offset: int) -> Json:
    if offset == 0:
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{name} = {value!r} is not an integer, so it cannot be shifted")
    return value + offset


def render(value: Json, variables: Mapping[str, Json]) -> Json:
    """``value`` with every placeholder replaced from ``variables``.

    Raises:
        InvalidInputError: a placeholder names a missing variable or field, or shifts a
            value that is not an integer.
    """
    if isinstance(value, list):
        return [render(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: render(item, variables) for key, item in value.items()}
    if not isinstance(value, str):
        return value
    found = list(_expressions(value))
    if len(found) == 1 and found[0][0] == value.strip():
        _, name, offset = found[0]
        return _apply_offset(name, _lookup(name, variables), offset)
    out = value
    for text, name, offset in found:
        rendered = _apply_offset(name, _lookup(name, variables), offset)
        out = out.replace(text, rendered if isinstance(rendered, str) else _text(rendered), 1)
    return out


def _text(value: Json) -> str:
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
