"""The code fingerprint of a component: its source plus the project-local code it calls.

ZenML learned that hashing only a step's own body misses changes in the helpers it calls
(zenml-io/zenml#1011). We hash the step function's source and, transitively, the source of
every function or class it references by a global name whose module lives outside the Python
installation (site-packages and the standard library are pinned by the loopline version and
the environment, not hashed), plus the values of simple module-level constants it reads.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
import sysconfig
import types
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

_CONSTANT_TYPES = (int, float, str, bytes, bool, type(None))


@lru_cache(maxsize=1)
def _installed_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths.get(k, "") for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots |= {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return tuple(sorted(str(Path(r).resolve()) for r in roots if r))


def is_project_local(obj: Any) -> bool:
    """True for functions, classes and modules defined in source files outside the Python
    installation (and outside loopline, whose version is part of the cache key)."""
    if isinstance(obj, types.ModuleType):
        module: Any = obj
        module_name = obj.__name__
    else:
        module_name = getattr(obj, "__module__", "") or ""
        module = sys.modules.get(module_name)
    filename = getattr(module, "__file__", None)
    if not filename:
        return False
    if module_name == "loopline" or module_name.startswith("loopline."):
        return False
    resolved = str(Path(filename).resolve())
    return not any(resolved.startswith(root) for root in _installed_roots())


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return repr(obj)


def code_parts(fn: Callable[..., Any]) -> dict[str, str]:
    """SHA-256 of each piece of code ``fn`` depends on, keyed by name.

    Objects of ``fn``'s own module are keyed by their qualified name alone (so a pipeline
    file keeps its cache when the project directory moves); objects of other modules by
    ``module.qualname``. Constants appear as ``NAME`` (or ``module.NAME``).
    """
    home = fn.__module__

    def label(module: str, name: str) -> str:
        return name if module == home else f"{module}.{name}"

    parts: dict[str, str] = {}
    seen: set[int] = set()
    stack: list[Any] = [fn]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, types.ModuleType):
            key = obj.__name__
        else:
            key = label(obj.__module__, obj.__qualname__)
        parts[key] = hashlib.sha256(_source(obj).encode()).hexdigest()
        for ref in _referenced(obj):
            if isinstance(ref[1], _CONSTANT_TYPES):
                name = label(getattr(obj, "__module__", home), ref[0])
                parts[name] = hashlib.sha256(repr(ref[1]).encode()).hexdigest()
            elif id(ref[1]) not in seen:
                stack.append(ref[1])
    return dict(sorted(parts.items()))


def _referenced(obj: Any) -> Iterator[tuple[str, Any]]:
    functions: list[types.FunctionType] = []
    if isinstance(obj, types.FunctionType):
        functions.append(obj)
    elif isinstance(obj, type):
        functions.extend(v for v in vars(obj).values() if isinstance(v, types.FunctionType))
    for fn in functions:
        module_globals = fn.__globals__
        for code in _code_objects(fn.__code__):
            for name in code.co_names:
                if name not in module_globals:
                    continue
                value = module_globals[name]
                if isinstance(value, _CONSTANT_TYPES) and not name.startswith("__"):
                    yield name, value
                    continue
                target = getattr(value, "fn", value)  # a Component wraps its function
                kinds = (types.FunctionType, type, types.ModuleType)
                if isinstance(target, kinds) and is_project_local(target):
                    yield name, target


def fingerprint(parts: dict[str, str]) -> str:
    """One SHA-256 over the sorted parts."""
    digest = hashlib.sha256()
    for key, value in sorted(parts.items()):
        digest.update(f"{key}={value}\n".encode())
    return digest.hexdigest()
