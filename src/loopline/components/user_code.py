"""Binding a user's function (preprocessing, training, search space) into a component.

TFX passes a ``module_file`` path; its contents are then invisible to a cache keyed on the
step's code. Here the user's function is bound into a copy of the component's function as a
*global* name, so the runner's code fingerprint (which follows the globals a function reads
into project-local code) hashes the user's function and every project-local helper it calls:
editing ``preprocessing_fn`` re-runs Transform and everything downstream, nothing else.

Bound components run in the runner's process (``isolation="thread"``): a child process
imports the component by name and would not see the binding.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable
from typing import Any

from loopline.errors import InvalidDefinitionError
from loopline.pipeline import Component


def bind(template: Component, **functions: Callable[..., Any]) -> Component:
    """A copy of ``template`` whose function sees ``functions`` as module globals.

    Raises:
        InvalidDefinitionError: a value is not callable, or names a global the template does
            not read.
    """
    fn = template.fn
    if not isinstance(fn, types.FunctionType):  # pragma: no cover - components wrap functions
        raise InvalidDefinitionError(f"Component {template.name!r} does not wrap a function.")
    for name, value in functions.items():
        if not callable(value):
            raise InvalidDefinitionError(
                f"{template.name}: {name.lstrip('_').lower()} must be a function, got {value!r}."
            )
        if name not in _global_names(fn.__code__):
            raise InvalidDefinitionError(f"{template.name} does not read a global {name!r}.")
    scope = {**fn.__globals__, **functions}
    bound = types.FunctionType(fn.__code__, scope, fn.__name__, fn.__defaults__, fn.__closure__)
    bound.__kwdefaults__ = fn.__kwdefaults__
    bound.__annotations__ = dict(fn.__annotations__)
    bound.__qualname__ = fn.__qualname__
    bound.__module__ = fn.__module__
    bound.__doc__ = fn.__doc__
    return dataclasses.replace(template, fn=bound)


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def unbound(what: str) -> Callable[..., Any]:
    """The placeholder a template reads until :func:`bind` supplies the user's function."""

    def missing(*args: Any, **kwargs: Any) -> Any:
        raise InvalidDefinitionError(
            f"No {what} is bound to this component; build the step with the component's "
            f"factory (which takes {what}=...) and run it with isolation='thread'."
        )

    return missing
