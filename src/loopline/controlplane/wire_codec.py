"""The codec of the control plane's wire types: frozen dataclasses ↔ JSON, and their JSON
Schema for the OpenAPI document.

A wire type is a frozen dataclass whose fields are ``str``, ``int``, ``float``, ``bool``,
``X | None``, ``tuple[X, ...]``, ``dict[str, X]``, another wire type, or :data:`Doc` (a JSON
object the type does not look into: a spec as the user wrote it, an autoscaler's state). A
field's JSON name is its name in camelCase (``creation_timestamp`` → ``creationTimestamp``)
unless :func:`wire` gives another; ``wire(omit_none=True)`` leaves a None out of the JSON, as
the server does for a key it sends only sometimes.

Decoding checks every value against its type and raises an error naming the field path;
unknown keys are ignored (an older client keeps working against a newer server, as
Kubernetes' clients do) unless ``strict``. ``to_json(from_json(T, body)) == body`` holds for
every body a handler sends; the API's tests check it on real calls.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from loopline.errors import InvalidInputError, shown

T = TypeVar("T")

Doc = dict[str, Any]
"""A JSON object a wire type carries as it is (schema ``object``)."""


OMIT_NONE: Mapping[str, Any] = {"omit_none": True}
"""``dataclasses.field(default=None, metadata=OMIT_NONE)``: a None is left out of the JSON."""


def wire(
    name: str | None = None,
    *,
    omit_none: bool = False,
    schema: dict[str, Any] | None = None,
    description: str = "",
    default: Any = dataclasses.MISSING,
    required: bool = False,
) -> Any:
    """A dataclass field with its JSON name, whether a None is left out, and a JSON Schema
    (or a description) to use in place of the one derived from its type; ``required``: always
    sent although it has a default (a dataclass needs one after a defaulted field)."""
    meta = {"json": name, "omit_none": omit_none, "schema": schema, "description": description,
            "required": required}  # fmt: skip
    if default is dataclasses.MISSING and omit_none:
        default = None
    return dataclasses.field(default=default, metadata=meta)


def json_name(field: dataclasses.Field[Any]) -> str:
    given = field.metadata.get("json")
    if given:
        return str(given)
    head, *rest = field.name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(cls)


def to_json(value: Any) -> Any:
    """The JSON value of a wire object (dataclasses become objects in field order)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in _fields(type(value)):
            v = getattr(value, f.name)
            if v is None and f.metadata.get("omit_none"):
                continue
            out[json_name(f)] = to_json(v)
        return out
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    if isinstance(value, Mapping):
        return {k: to_json(v) for k, v in value.items()}
    return value


def from_json(tp: type[T], value: Any, *, strict: bool = False, where: str = "") -> T:
    """``value`` (parsed JSON) as a ``tp``.

    Raises:
        InvalidInputError: a value does not have its field's type (the message names the
            field path), a required key is missing, or (``strict``) a key is unknown.
    """
    result: T = _decode(tp, value, strict, where)
    return result


def _bad(where: str, value: Any, expected: str) -> InvalidInputError:
    return InvalidInputError(
        f"The control plane's answer has {where or 'its body'} = {shown(value)}, not "
        f"{expected}; the client and the server disagree on the API (upgrade the older one).",
        field=where or None,
    )


def _decode(tp: Any, value: Any, strict: bool, where: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _decode(option, value, strict, where)
            except InvalidInputError as exc:
                errors.append(exc)
        raise errors[0] if len(errors) == 1 else _bad(where, value, _name(tp))
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _decode_object(tp, value, strict, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise _bad(where, value, "a list")
        (item, _) = get_args(tp)
        return tuple(_decode(item, v, strict, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise _bad(where, value, "an object")
        args = get_args(tp)
        item = args[1] if args else Any
        return {k: _decode(item, v, strict, f"{where}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad(where, value, "a number")
        return value
    if tp in (str, int, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise _bad(where, value, _name(tp))
        return value
    raise TypeError(f"{_name(tp)} at {where or 'the top'} is not a wire type")


def _decode_object(cls: type, value: Any, strict: bool, where: str) -> Any:
    if not isinstance(value, dict):
        raise _bad(where, value, f"a {cls.__name__} object")
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    known = set()
    for f in _fields(cls):
        key = json_name(f)
        known.add(key)
        path = f"{where}.{key}" if where else key
        if key not in value:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise _bad(path, "(missing)", _name(hints[f.name]))
            continue
        kwargs[f.name] = _decode(hints[f.name], value[key], strict, path)
    if strict:
        unknown = sorted(set(value) - known)
        if unknown:
            raise _bad(where, unknown, f"a {cls.__name__} (unknown keys)")
    return cls(**kwargs)


def _name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp)


def schema_of(tp: Any, components: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of ``tp``; each wire type becomes ``components[<class name>]`` and is
    referenced as ``#/components/schemas/<class name>``."""
    origin = get_origin(tp)
    if tp is Any:
        return {}
    if origin in (typing.Union, types.UnionType):
        options = [o for o in get_args(tp) if o is not type(None)]
        nullable = len(options) < len(get_args(tp))
        if len(options) == 1:
            inner = schema_of(options[0], components)
            if not nullable:
                return inner
            if set(inner) == {"type"} and isinstance(inner["type"], str):
                return {"type": [inner["type"], "null"]}
            return {"anyOf": [inner, {"type": "null"}]}
        parts = [schema_of(o, components) for o in options]
        return {"anyOf": parts + ([{"type": "null"}] if nullable else [])}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        name = tp.__name__
        if name not in components:
            components[name] = {}  # a placeholder: a type may refer to itself
            components[name] = _object_schema(tp, components)
        return {"$ref": f"#/components/schemas/{name}"}
    if origin is tuple:
        return {"type": "array", "items": schema_of(get_args(tp)[0], components)}
    if origin is dict or tp is dict:
        args = get_args(tp)
        if not args or args[1] is Any:
            return {"type": "object"}
        return {"type": "object", "additionalProperties": schema_of(args[1], components)}
    simple = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if tp in simple:
        return {"type": simple[tp]}
    raise TypeError(f"{_name(tp)} is not a wire type")


def _object_schema(cls: type, components: dict[str, Any]) -> dict[str, Any]:
    hints = _hints(cls)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for f in _fields(cls):
        key = json_name(f)
        given = f.metadata.get("schema")
        prop = dict(given) if given is not None else schema_of(hints[f.name], components)
        if f.metadata.get("description"):
            prop["description"] = f.metadata["description"]
        properties[key] = prop
        if f.metadata.get("required") or (
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ):
            required.append(key)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    doc = (cls.__doc__ or "").strip()
    if doc and not doc.startswith(cls.__name__ + "("):  # not dataclass' generated signature
        schema["description"] = " ".join(doc.split())
    return schema
