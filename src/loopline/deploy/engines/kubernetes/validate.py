"""Offline validation of rendered Kubernetes manifests, for the oldest and newest supported
Kubernetes versions.

Three layers, every problem reported (not only the first) as a :class:`Problem` naming the
object and the field path:

1. Built-in kinds against the official schemas of each version with kubernetes-validate's
   Python API in strict mode (unknown fields fail, like ``kubectl --validate=strict``). A
   missing schema (``SchemaNotFoundError``) is a failure, not the tool's warning: it means a
   removed or misspelled ``apiVersion`` for that version. kubernetes-validate stops at the
   first error of an object; the other layers still report theirs.
2. ``gateway.networking.k8s.io/v1`` HTTPRoutes against the vendored Gateway API v1.6.1 CRD
   schema with ``jsonschema`` (Draft 7, unknown fields fail; the CEL rules are not evaluated).
   Any other custom kind fails: there is no schema to check it against.
3. loopline's own checks (:mod:`~loopline.deploy.engines.kubernetes.checks`).

kubernetes-validate and jsonschema come with the ``k8s-validate`` extra.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import Any

from loopline.deploy.engines.kubernetes.checks import Problem, check_objects, object_id
from loopline.errors import InvalidDefinitionError, InvalidInputError, require
from loopline.types import JsonDict

SUPPORTED_VERSIONS = ("1.25", "1.37")
"""The oldest and newest Kubernetes minor versions the manifests are checked against."""
GATEWAY_API_VERSION = "v1.6.1"
CRD_SOURCE = f"HTTPRoute CRD {GATEWAY_API_VERSION}"
_CRD_SCHEMAS = {("gateway.networking.k8s.io/v1", "HTTPRoute"): "httproute-v1.json"}


def check(objects: Sequence[JsonDict], versions: Iterable[str] = SUPPORTED_VERSIONS
          ) -> list[Problem]:  # fmt: skip
    """Every problem in ``objects`` (empty: they validate).

    Raises:
        DependencyMissingError: kubernetes-validate or jsonschema is not installed.
        InvalidInputError: a version is not one kubernetes-validate has schemas for.
    """
    require("kubernetes_validate", "k8s-validate", "validating Kubernetes manifests")
    require("jsonschema", "k8s-validate", "validating Kubernetes manifests")
    versions = tuple(versions)
    problems: list[Problem] = []
    for obj in objects:
        if not isinstance(obj, Mapping) or not all(
            isinstance(obj.get(k), str) for k in ("apiVersion", "kind")
        ):
            who = object_id(obj) if isinstance(obj, Mapping) else "?"
            problems.append(Problem(who, "", "is not an object with apiVersion and kind",
                                    "loopline"))
            continue
        api_version, kind = str(obj["apiVersion"]), str(obj["kind"])
        if (api_version, kind) in _CRD_SCHEMAS:
            problems += _check_crd(obj, _CRD_SCHEMAS[api_version, kind])
        elif _custom_group(api_version):
            problems.append(Problem(object_id(obj), "apiVersion", f"no schema is shipped for "
                                    f"{obj['apiVersion']} {obj['kind']}; it cannot be "
                                    "validated", "loopline"))  # fmt: skip
        else:
            for version in versions:
                problems += _check_builtin(obj, version)
    problems += check_objects([o for o in objects if isinstance(o, Mapping)])
    return problems


def validate(objects: Sequence[JsonDict], versions: Iterable[str] = SUPPORTED_VERSIONS) -> None:
    """Raise unless ``objects`` validate (see :func:`check`).

    Raises:
        InvalidDefinitionError: one line per problem, naming the object and the field.
        DependencyMissingError: the ``k8s-validate`` extra is not installed.
    """
    problems = check(objects, versions)
    if problems:
        lines = "\n".join(f"- {p}" for p in problems)
        raise InvalidDefinitionError(
            f"{len(problems)} problem(s) in the Kubernetes manifests:\n{lines}"
        )


def _custom_group(api_version: str) -> bool:
    """A group Kubernetes itself does not serve: dotted, and not under ``k8s.io``."""
    group = api_version.rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io")


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _check_builtin(obj: JsonDict, version: str) -> list[Problem]:
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError, VersionNotSupportedError

    source = f"Kubernetes {version} schema"
    try:
        kubernetes_validate.validate(dict(obj), version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [Problem(object_id(obj), _path(exc.path), exc.message, source)]
    except SchemaNotFoundError:
        return [Problem(object_id(obj), "apiVersion", f"Kubernetes {version} has no "
                        f"{obj['apiVersion']} {obj['kind']} (removed, not yet served, or "
                        "misspelled)", source)]  # fmt: skip
    except VersionNotSupportedError:
        raise InvalidInputError(
            f"Kubernetes version {version!r} is not one kubernetes-validate has schemas for; "
            f"use one from {SUPPORTED_VERSIONS[0]} to {SUPPORTED_VERSIONS[-1]}."
        ) from None
    except IndexError:  # older than the oldest schema set: the library's list is empty
        raise InvalidInputError(
            f"Kubernetes version {version!r} is older than the oldest supported "
            f"({SUPPORTED_VERSIONS[0]})."
        ) from None
    return []


def _check_crd(obj: JsonDict, schema_file: str) -> list[Problem]:
    import jsonschema

    validator = jsonschema.Draft7Validator(_crd_schema(schema_file))
    errors = sorted(validator.iter_errors(dict(obj)), key=lambda e: list(map(str, e.path)))
    return [Problem(object_id(obj), _path(e.path), e.message, CRD_SOURCE) for e in errors]


@functools.cache
def _crd_schema(name: str) -> JsonDict:
    text = resources.files("loopline.deploy.engines.kubernetes").joinpath("schemas", name)
    schema: JsonDict = _strict(json.loads(text.read_text()))
    return schema


def _strict(node: Any) -> Any:
    """Unknown fields fail: ``additionalProperties: false`` wherever properties are listed."""
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items()}
        if ("properties" in out and "additionalProperties" not in out
                and not out.get("x-kubernetes-preserve-unknown-fields")):  # fmt: skip
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node
