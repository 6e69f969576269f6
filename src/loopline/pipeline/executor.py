"""Call one component function, in a thread of the runner or in a child process.

The runner owns everything around the call (metadata rows, staging, publishing); this module
only invokes the user's function with a deadline and reports how it ended.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopline.errors import GateFailedError, StepTimeoutError
from loopline.pipeline import capture
from loopline.pipeline.component import Component
from loopline.pipeline.context import StepContext
from loopline.pipeline.ports import Input, Output
from loopline.types import Json


@dataclass
class Invocation:
    """Everything needed to call a component function once."""

    component: Component
    params: dict[str, Json]
    inputs: dict[str, Input[Any] | None]
    outputs: dict[str, Output[Any]]
    context: StepContext
    timeout: float | None
    isolation: str
    log_path: Path


@dataclass
class Outcome:
    """How a call ended; ``error`` is None on success."""

    error: str | None = None
    error_type: str | None = None
    gate: bool = False
    timed_out: bool = False
    traceback: str = ""
    extra: dict[str, Json] = field(default_factory=dict)


def invoke(inv: Invocation) -> Outcome:
    """Run the function; never raises for errors of the user's code."""
    if inv.isolation == "process":
        return _in_process(inv)
    return _in_thread(inv)


def _kwargs(inv: Invocation) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(inv.params)
    kwargs.update(inv.inputs)
    kwargs.update(inv.outputs)
    if inv.component.context_arg:
        kwargs[inv.component.context_arg] = inv.context
    return kwargs


def _describe(exc: BaseException) -> Outcome:
    return Outcome(
        error=f"{type(exc).__name__}: {exc}",
        error_type=type(exc).__name__,
        gate=isinstance(exc, GateFailedError),
        traceback="".join(traceback.format_exception(exc)),
    )


def _in_thread(inv: Invocation) -> Outcome:
    box: dict[str, Outcome] = {}

    def target() -> None:
        with open(inv.log_path, "a", encoding="utf-8") as log, capture.to_file(log):
            try:
                inv.component.fn(**_kwargs(inv))
                box["outcome"] = Outcome()
            except BaseException as exc:  # user code may raise anything, even SystemExit
                box["outcome"] = _describe(exc)
                log.write(box["outcome"].traceback)

    if inv.timeout is None:
        target()
        return box["outcome"]
    worker = threading.Thread(target=target, name=f"step-{inv.context.step_id}", daemon=True)
    worker.start()
    worker.join(inv.timeout)
    if worker.is_alive():
        # A thread cannot be killed: the step is failed now and whatever the thread still
        # writes is discarded (its outputs are never published). Use isolation="process"
        # for steps that must be stopped at the deadline.
        return _timed_out(inv)
    return box["outcome"]


def _timed_out(inv: Invocation) -> Outcome:
    err = StepTimeoutError(
        f"Step {inv.context.step_id!r} did not finish within its timeout of "
        f"{inv.timeout} s; raise the timeout or make the step faster."
    )
    out = _describe(err)
    out.timed_out = True
    return out


def _in_process(inv: Invocation) -> Outcome:
    fn = inv.component.fn
    module = sys.modules.get(fn.__module__)
    module_file = getattr(module, "__file__", None)
    with tempfile.TemporaryDirectory(prefix="loopline-step-") as tmp:
        payload_path = Path(tmp) / "payload.json"
        result_path = Path(tmp) / "result.json"
        payload = {
            "module": fn.__module__,
            "module_file": module_file,
            "component": inv.component.name,
            "qualname": fn.__qualname__,
            "params": inv.params,
            "inputs": {k: _input_json(v) for k, v in inv.inputs.items()},
            "outputs": {k: _output_json(v) for k, v in inv.outputs.items()},
            "context": {
                "run_name": inv.context.run_name,
                "step_id": inv.context.step_id,
                "execution_id": inv.context.execution_id,
                "attempt": inv.context.attempt,
                "trust": _trust_json(inv.context),
            },
            "result": str(result_path),
        }
        payload_path.write_text(json.dumps(payload))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        with open(inv.log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "loopline.pipeline.child", str(payload_path)],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
            try:
                code = proc.wait(timeout=inv.timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
                return _timed_out(inv)
        if not result_path.exists():
            return Outcome(
                error=f"ChildProcessError: the step's process exited with code {code} "
                "without reporting a result (killed or crashed); see its log.",
                error_type="ChildProcessError",
            )
        result = json.loads(result_path.read_text())
    for port, props in result.get("outputs", {}).items():
        inv.outputs[port].properties.update(props)
    for key, value, step in result.get("metrics", []):
        inv.context.metrics.append((key, value, step))
    inv.context.params.update(result.get("params", {}))
    inv.context.tags.update(result.get("tags", {}))
    if result.get("error"):
        return Outcome(
            error=result["error"],
            error_type=result.get("error_type"),
            gate=bool(result.get("gate")),
            traceback=result.get("traceback", ""),
        )
    return Outcome()


def _trust_json(context: StepContext) -> dict[str, Json] | None:
    """The step's trust as the child rebuilds it (:func:`loopline.pipeline.child.trust_of`)."""
    trust = context.trust
    if trust is None:
        return None
    return {"loaders": list[Json](sorted(trust.loaders)), "types": list[Json](sorted(trust.types))}


def _input_json(value: Input[Any] | None) -> dict[str, Json] | None:
    if value is None:
        return None
    return {
        "id": value.id,
        "type_name": value.type_name,
        "uri": value.uri,
        "path": str(value.path),
        "digest": value.digest,
        "name": value.name,
        "properties": dict(value.properties),
    }


def _output_json(value: Output[Any]) -> dict[str, Json]:
    return {
        "type_name": value.type_name,
        "uri": value.uri,
        "path": str(value.path),
        "name": value.name,
        "properties": dict(value.properties),
    }
