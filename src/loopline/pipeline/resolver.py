"""Resolvers: pipeline nodes that pick existing artifacts from the metadata store.

A resolver's output is an artifact that already exists (the latest blessed model, the latest
Examples of a span), so that what a step consumes is an explicit input — recorded in lineage
and in the consumer's cache key — rather than a query hidden inside the step. A resolver
runs every time (it is never cached) and may find nothing, in which case its output is empty
and only an optional input (``Input[Model] | None = None``) may consume it.

    @resolver(output=Model)
    def latest_blessed(store: MetadataStore, pipeline: str) -> Artifact | None:
        ctx = store.find_context("pipeline", pipeline)
        return store.latest_blessed_model(context_id=ctx.id if ctx else None)
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

from loopline.errors import InvalidDefinitionError
from loopline.pipeline.artifact_types import ArtifactType
from loopline.pipeline.component import Component, OutputPort, _build
from loopline.pipeline.step import StepOptions

RESOLVER_OUTPUT = "artifact"


def resolver(
    *, output: type[ArtifactType], name: str | None = None
) -> Callable[[Callable[..., Any]], Component]:
    """Declare a resolver whose single output (``.outputs.artifact``) has type ``output``.

    The function receives the metadata store and the pipeline name as its first two
    positional arguments, then its own typed value parameters, and returns an ``Artifact``
    (from ``loopline.metadata``) or None.
    """
    if not (isinstance(output, type) and issubclass(output, ArtifactType)):
        raise InvalidDefinitionError(
            f"resolver(output={output!r}) must be an artifact type such as Model."
        )

    def wrap(fn: Callable[..., Any]) -> Component:
        cname = name or fn.__name__
        params = list(inspect.signature(fn).parameters.values())
        if len(params) < 2 or params[0].kind not in (
            params[0].POSITIONAL_ONLY,
            params[0].POSITIONAL_OR_KEYWORD,
        ):
            raise InvalidDefinitionError(
                f"Resolver {cname!r} must take (store, pipeline, ...) as its first two parameters."
            )
        skip = {params[0].name, params[1].name}

        def values_only(**kwargs: Any) -> None:  # signature carrier for _build
            raise AssertionError("never called")

        carrier_params = [p for p in params if p.name not in skip]
        values_only.__signature__ = inspect.Signature(carrier_params)  # type: ignore[attr-defined]
        try:
            hints = typing.get_type_hints(fn)
        except Exception as exc:
            raise InvalidDefinitionError(
                f"Resolver {cname!r}: cannot resolve its annotations: {exc}."
            ) from exc
        values_only.__annotations__ = {
            p.name: hints[p.name] for p in carrier_params if p.name in hints
        }
        built = _build(values_only, cname, StepOptions(cache=False))
        if built.inputs or built.outputs or built.context_arg:
            raise InvalidDefinitionError(
                f"Resolver {cname!r} takes value parameters only, not Input/Output/StepContext."
            )
        return dataclasses.replace(
            built,
            fn=fn,
            outputs=types.MappingProxyType({RESOLVER_OUTPUT: OutputPort(RESOLVER_OUTPUT, output)}),
            kind="resolver",
        )

    return wrap
