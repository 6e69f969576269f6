"""InfraValidator: load the candidate exactly as serving will, in a separate process.

It starts the real model server (``ServeCommand((MODEL_DIR,), port=0,
expected_digest=DIGEST).process_argv(python)``: the process every deployment replica runs,
bound to 127.0.0.1, checking the bytes against the Model's recorded digest and loading with
the operator's trust from the environment) in its own session, waits for
``/v2/health/ready`` (the server is ready only after its warm-up inference succeeded), sends
``num_examples`` rows of the eval split to ``/invocations`` and checks that every row gets a
prediction; then stops the server (SIGTERM, then SIGKILL after a grace period).
Every wait has a deadline and polls back off.

The result is an ``InfraBlessing`` (``infra_blessing.json``, marker ``INFRA_BLESSED`` or
``INFRA_NOT_BLESSED``, property ``blessed`` 1/0 and ``reason``); a failure is a verdict, not
an error, so the Pusher can refuse with the reason. The model's bytes are checked against its
recorded digest before the server is started.
"""

from __future__ import annotations

import json
import math
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from loopline.bundle import Manifest, tree_digest
from loopline.components.tables import read_split
from loopline.pipeline import (
    Examples,
    InfraBlessing,
    Input,
    Model,
    Output,
    StepContext,
    component,
)
from loopline.serving import ServeCommand
from loopline.types import Json

RESULT_FILE = "infra_blessing.json"
_LISTENING = "listening on "


class _Refused(Exception):
    """The candidate failed infra validation; the message is the reason."""


def _first_line(proc: subprocess.Popen[bytes], deadline: float) -> str:
    """The server's announcement line (``listening on http://…``), within the deadline."""
    if proc.stdout is None:  # pragma: no cover - started with stdout=PIPE
        raise _Refused("the server's output is not captured")
    buffer = b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, min(0.5, deadline - time.monotonic()))):
                if proc.poll() is not None:
                    raise _Refused(f"the model server exited with code {proc.returncode}")
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                raise _Refused(f"the model server exited with code {proc.wait(timeout=5)}")
            buffer += chunk
            for line in buffer.decode(errors="replace").splitlines():
                if _LISTENING in line:
                    return line.split(_LISTENING, 1)[1].split()[0]
    raise _Refused("the model server did not start listening before the deadline")


def _wait_ready(client: httpx.Client, url: str, deadline: float) -> float:
    """Poll readiness with exponential backoff; return the seconds it took."""
    started = time.monotonic()
    delay = 0.05
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            r = client.get(f"{url}/v2/health/ready", timeout=2.0)
            if r.status_code == 200:
                return time.monotonic() - started
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 1.0)
    raise _Refused(f"the model server never became ready (last answer: {last})")


def _stop(proc: subprocess.Popen[bytes], grace: float) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _records(examples: Input[Examples] | None, model_dir: Path, n: int) -> list[dict[str, Json]]:
    manifest = Manifest.read(model_dir)
    columns = [s.name for s in manifest.signature.inputs]
    if examples is not None:
        table = read_split(examples.path, "eval", examples.properties)
        present = [c for c in columns if c in table.column_names]
        if present != columns:
            missing = sorted(set(columns) - set(present))
            raise _Refused(f"the eval split lacks model input column(s) {missing}")
        rows: list[dict[str, Json]] = table.select(columns).slice(0, n).to_pylist()
    elif manifest.example is not None:
        example = manifest.example
        count = len(next(iter(example.values()))) if example else 0
        rows = [{c: example[c][i] for c in columns} for i in range(min(n, count))]
    else:
        rows = []
    return [
        {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
        for r in rows
    ]


def validate_serving(
    model_dir: Path, records: list[dict[str, Json]], *, timeout: float, digest: str
) -> dict[str, Json]:
    """Serve ``model_dir`` (which must have ``digest``) in a child process and query it;
    raises _Refused with a reason."""
    deadline = time.monotonic() + timeout
    cmd = ServeCommand(
        models=(str(Path(model_dir).absolute()),),
        expected_digest=digest,
        host="127.0.0.1",
        port=0,
        name="infra-validation",
        graceful_timeout=5.0,
    ).process_argv(sys.executable)
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = _first_line(proc, deadline)
        with httpx.Client() as client:
            ready = _wait_ready(client, url, deadline)
            answered = 0
            if records:
                left = max(0.1, deadline - time.monotonic())
                r = client.post(
                    f"{url}/invocations",
                    json={"dataframe_records": records},
                    timeout=left,
                )
                if r.status_code != 200:
                    raise _Refused(f"/invocations answered HTTP {r.status_code}: {r.text[:300]}")
                body = r.json()
                preds = body.get("predictions") if isinstance(body, dict) else body
                answered = len(preds) if isinstance(preds, list | dict) else 0
                if isinstance(preds, dict):
                    answered = min(len(v) for v in preds.values()) if preds else 0
                if answered != len(records):
                    raise _Refused(
                        f"{len(records)} rows were sent but {answered} predictions came back"
                    )
        return {"ready_seconds": round(ready, 3), "queries": len(records), "answered": answered}
    finally:
        _stop(proc, grace=10.0)
        if proc.stdout is not None:
            proc.stdout.close()


@component(name="InfraValidator")
def InfraValidator(
    model: Input[Model],
    infra_blessing: Output[InfraBlessing],
    ctx: StepContext,
    examples: Input[Examples] | None = None,
    num_examples: int = 5,
    timeout: float = 60.0,
) -> None:
    """Serve the candidate in a separate process, query it, and write the infra verdict."""
    started = time.monotonic()
    facts: dict[str, Json] = {"mode": "serve_and_query"}
    try:
        if model.digest is None:
            raise _Refused("the model has no recorded digest, so no server would load it")
        if tree_digest(model.path) != model.digest:
            raise _Refused(f"the model bytes do not match the recorded digest {model.digest}")
        records = _records(examples, model.path, num_examples)
        facts.update(validate_serving(model.path, records, timeout=timeout, digest=model.digest))
        blessed, reason = True, "the model server loaded the model and answered every query"
    except _Refused as exc:
        blessed, reason = False, str(exc)
    except Exception as exc:  # a model that breaks the validator is not blessed either
        blessed, reason = False, f"{type(exc).__name__}: {exc}"
    facts.update(blessed=blessed, reason=reason, seconds=round(time.monotonic() - started, 3))
    (infra_blessing.path / RESULT_FILE).write_text(json.dumps(_stable(facts), indent=2))
    (infra_blessing.path / ("INFRA_BLESSED" if blessed else "INFRA_NOT_BLESSED")).write_text("")
    infra_blessing.properties.update(blessed=int(blessed), reason=reason, model_id=model.id)
    ctx.log_metrics(infra_seconds=time.monotonic() - started)
    ctx.set_tags(infra_blessed=str(blessed).lower())


def _stable(facts: dict[str, Any]) -> dict[str, Json]:
    """The verdict file without timings, so an unchanged model yields identical bytes."""
    return {k: v for k, v in facts.items() if k not in ("seconds", "ready_seconds")}
