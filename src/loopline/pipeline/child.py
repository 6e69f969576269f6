"""Entry point of a step running in its own process: ``python -m loopline.pipeline.child``.

Reads the payload the runner wrote, imports the component's module (by name, or from its
file), calls the function with the same handles a thread would get — the same
``StepContext``, with the runner's ``trust`` — and writes a result file. The child reads no
setting: what it may load comes in the payload.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import traceback
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING, Any

from loopline.errors import GateFailedError
from loopline.pipeline.context import StepContext
from loopline.pipeline.ports import Input, Output

if TYPE_CHECKING:
    from loopline.bundle import Trust


def _load_module(name: str, file: str | None) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    try:
        return importlib.import_module(name)
    except ImportError:
        if not file:
            raise
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load module {name!r} from {file!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main(payload_file: str) -> int:
    payload = json.loads(Path(payload_file).read_text())
    result: dict[str, Any] = {}
    context = dict(payload["context"])
    trust = trust_of(context.pop("trust", None))
    ctx = StepContext(**context, trust=trust)
    outputs: dict[str, Output[Any]] = {
        k: Output(
            type_name=v["type_name"],
            uri=v["uri"],
            path=Path(v["path"]),
            name=v["name"],
            properties=v["properties"],
        )
        for k, v in payload["outputs"].items()
    }
    try:
        module = _load_module(payload["module"], payload["module_file"])
        target: Any = module
        for part in payload["qualname"].split("."):
            target = getattr(target, part)
        fn = getattr(target, "fn", target)
        component = getattr(target, "context_arg", None)
        kwargs: dict[str, Any] = dict(payload["params"])
        for k, v in payload["inputs"].items():
            kwargs[k] = (
                None
                if v is None
                else Input(
                    id=v["id"],
                    type_name=v["type_name"],
                    uri=v["uri"],
                    path=Path(v["path"]),
                    digest=v["digest"],
                    name=v["name"],
                    properties=MappingProxyType(v["properties"]),
                )
            )
        kwargs.update(outputs)
        context_arg = component or _find_context_arg(module, payload["component"])
        if context_arg:
            kwargs[context_arg] = ctx
        fn(**kwargs)
    except BaseException as exc:  # report anything the user's code raised
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["error_type"] = type(exc).__name__
        result["gate"] = isinstance(exc, GateFailedError)
        result["traceback"] = "".join(traceback.format_exception(exc))
        sys.stderr.write(result["traceback"])
    result["outputs"] = {k: v.properties for k, v in outputs.items()}
    result["metrics"] = ctx.metrics
    result["params"] = ctx.params
    result["tags"] = ctx.tags
    tmp = Path(payload["result"] + ".tmp")
    tmp.write_text(json.dumps(result, default=str))
    tmp.rename(payload["result"])
    return 0


def trust_of(data: Any) -> Trust | None:
    """The :class:`~loopline.bundle.Trust` the runner sent (``{"loaders": […], "types":
    […]}``), or None for loopline's built-in trust."""
    if data is None:
        return None
    from loopline.bundle import Trust

    return Trust(loaders=frozenset(data["loaders"]), types=frozenset(data["types"]))


def _find_context_arg(module: ModuleType, component_name: str) -> str | None:
    for value in vars(module).values():
        if getattr(value, "name", None) == component_name and hasattr(value, "context_arg"):
            arg: str | None = value.context_arg
            return arg
    return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
