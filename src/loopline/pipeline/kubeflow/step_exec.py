"""Run one step of a compiled pipeline inside its container, from KFP's ExecutorInput.

``loopline step exec`` calls :func:`execute_step`: inputs are read from their local paths
(see :func:`~loopline.pipeline.kubeflow.executor_io.local_path`), parameters are typed by the
component's signature, each output is written into the directory at its output path, and the
ExecutorOutput (artifact metadata: the properties the step set, the content digest, the
loopline type) is written to ``outputs.outputFile`` — always, also when the step failed, so
kfp.local and KFP see every output a finished step has. The step's ``timeout`` is enforced
here; retries are the engine's (``retryPolicy`` in the IR).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TextIO

from loopline.artifacts.digest import tree_digest
from loopline.errors import ConflictError, InvalidInputError, LooplineError
from loopline.metadata.entities import Artifact
from loopline.pipeline.component import ParameterSpec, accepts
from loopline.pipeline.context import StepContext
from loopline.pipeline.executor import Invocation, Outcome, invoke
from loopline.pipeline.graph import Pipeline
from loopline.pipeline.kubeflow.executor_io import (
    DIGEST_KEY,
    EMPTY_KEY,
    TYPE_KEY,
    ExecutorInput,
    ExecutorOutput,
    RuntimeArtifact,
)
from loopline.pipeline.kubeflow.ir import step_fingerprint
from loopline.pipeline.kubeflow.lineage import KfpLineage
from loopline.pipeline.ports import Input, Output
from loopline.pipeline.step import Step
from loopline.types import Json

if TYPE_CHECKING:
    from loopline.artifacts.store import ArtifactStore
    from loopline.bundle import Trust
    from loopline.metadata.store import MetadataStore


@dataclass(frozen=True)
class StepExec:
    """Everything one ``loopline step exec`` needs besides the pipeline and its input."""

    step_id: str
    run_name: str
    code_fingerprint: str | None = None
    metadata: MetadataStore | None = None
    artifacts: ArtifactStore | None = None
    trust: Trust | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class StepExecResult:
    """How the step ended and what it reported."""

    step_id: str
    error: str | None
    gate: bool
    output: ExecutorOutput
    execution_id: int | None

    @property
    def ok(self) -> bool:
        """True when the step succeeded."""
        return self.error is None


def execute_step(
    pipeline: Pipeline, executor_input: ExecutorInput, job: StepExec, log: TextIO
) -> StepExecResult:
    """Run ``job.step_id`` of ``pipeline`` and write the ExecutorOutput.

    Raises:
        InvalidDefinitionError: the pipeline has no such step.
        ConflictError: the step's code differs from the compiled code (``code_fingerprint``).
        InvalidInputError: the ExecutorInput lacks an input, output or parameter the step
            needs, or a value has the wrong type.
    """
    step = pipeline.step(job.step_id)
    if job.code_fingerprint is not None:
        found = step_fingerprint(step)
        if found != job.code_fingerprint:
            raise ConflictError(
                f"Step {step.id!r} in this image has code fingerprint {found[:12]}…, but the "
                f"compiled pipeline expects {job.code_fingerprint[:12]}…; rebuild the image "
                "(loopline build --app DIR) from the code you compiled, or compile again."
            )
    params = _parameters(step, executor_input.parameters)
    if step.component.kind == "resolver":
        return _resolve(pipeline, step, params, executor_input, job, log)
    inputs = _inputs(step, executor_input)
    outputs = _outputs(step, executor_input)
    lineage = _lineage(pipeline, job, log)
    execution_id: int | None = None
    input_ids: dict[str, int] = {}
    if lineage is not None:
        execution_id, input_ids = lineage.begin(
            step,
            params,
            {p: (step.component.inputs[p].type.type_name, a) for p, a in inputs.items()},
            job.code_fingerprint or step_fingerprint(step),
            job.clock(),
        )
    handles: dict[str, Input[Any] | None] = {
        port: None
        if port not in inputs
        else Input(
            id=input_ids.get(port, 0),
            type_name=spec.type.type_name,
            uri=inputs[port].uri,
            path=inputs[port].path,
            digest=inputs[port].digest,
            name=inputs[port].name,
            properties=MappingProxyType(inputs[port].properties()),
        )
        for port, spec in step.component.inputs.items()
    }
    # With lineage on, the step gets the stores, as in the local runner (the Pusher needs them).
    stores = lineage is not None and execution_id is not None
    ctx = StepContext(
        job.run_name,
        step.id,
        execution_id or 0,
        metadata=job.metadata if stores else None,
        artifacts=job.artifacts if stores else None,
        trust=job.trust,
    )
    with tempfile.TemporaryDirectory(prefix="loopline-step-") as tmp:
        log_path = Path(tmp) / "step.log"
        outcome = invoke(
            Invocation(
                component=step.component,
                params=dict(params),
                inputs=handles,
                outputs=outputs,
                context=ctx,
                timeout=step.options.timeout,
                isolation="thread",
                log_path=log_path,
            )
        )
        if log_path.exists():
            log.write(log_path.read_text(encoding="utf-8", errors="replace"))
    reported: dict[str, RuntimeArtifact] = {}
    if outcome.error is None:
        outcome, reported = _finish_outputs(step, executor_input, outputs, outcome)
    else:
        for out in outputs.values():
            shutil.rmtree(out.path, ignore_errors=True)
    for key, value, index in ctx.metrics:
        log.write(f"metric {key}={value} (step {index})\n")
    result = ExecutorOutput(artifacts=reported, parameters={})
    result.write(executor_input.output_file)
    if lineage is not None and execution_id is not None:
        if outcome.error is None:
            lineage.complete(
                execution_id,
                {p: (step.component.outputs[p].type.type_name, a) for p, a in reported.items()},
                ctx.metrics,
                {"step_params": dict(ctx.params), "tags": dict(ctx.tags)},
                job.clock(),
            )
        else:
            lineage.failed(execution_id, outcome.error, job.clock())
    return StepExecResult(step.id, outcome.error, outcome.gate, result, execution_id)


def _lineage(pipeline: Pipeline, job: StepExec, log: TextIO) -> KfpLineage | None:
    if job.metadata is None:
        return None
    try:
        return KfpLineage(job.metadata, pipeline.name, job.run_name)
    except (LooplineError, OSError) as exc:
        log.write(f"lineage off: the metadata store failed: {exc}\n")
        return None


def _parameters(step: Step, given: Mapping[str, Json]) -> dict[str, Json]:
    values: dict[str, Json] = {}
    for name, spec in step.component.parameters.items():
        if name in given:
            values[name] = _typed(step, spec, given[name])
        elif spec.has_default:
            values[name] = spec.default
        elif spec.optional:
            values[name] = None
        else:
            raise InvalidInputError(
                f"Step {step.id!r} parameter {name!r} has no value in the ExecutorInput and no "
                "default; the compiled pipeline must pass it."
            )
    return values


def _typed(step: Step, spec: ParameterSpec, value: Json) -> Json:
    # protobuf Values are doubles: an integer parameter may arrive as 7.0.
    if spec.type is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if spec.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not accepts(spec, value):
        raise InvalidInputError(
            f"Step {step.id!r} parameter {spec.name!r} expects {spec.type.__name__}, got "
            f"{value!r} ({type(value).__name__}) in the ExecutorInput."
        )
    return value


def _inputs(step: Step, ei: ExecutorInput) -> dict[str, RuntimeArtifact]:
    found: dict[str, RuntimeArtifact] = {}
    for port, spec in step.component.inputs.items():
        art = ei.inputs.get(port)
        if art is None or art.empty:
            if not spec.optional:
                raise InvalidInputError(
                    f"Step {step.id!r} input {port!r} has no artifact in the ExecutorInput; "
                    "its producer must run first (dependentTasks)."
                )
            continue
        if not art.path.exists():
            raise InvalidInputError(
                f"Step {step.id!r} input {port!r}: no bytes at {str(art.path)!r} (URI "
                f"{art.uri!r}); the engine must download or mount the artifact there."
            )
        found[port] = art
    return found


def _outputs(step: Step, ei: ExecutorInput) -> dict[str, Output[Any]]:
    outs: dict[str, Output[Any]] = {}
    for port, spec in step.component.outputs.items():
        art = ei.outputs.get(port)
        if art is None:
            raise InvalidInputError(
                f"Step {step.id!r} output {port!r} has no artifact in the ExecutorInput; "
                "compile the pipeline again with this version of loopline."
            )
        path = art.path
        if path.is_dir():  # an earlier attempt's leftovers: this attempt starts empty
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        path.mkdir(parents=True)
        outs[port] = Output(spec.type.type_name, art.uri, path, f"{step.id}.{port}")
    return outs


def _finish_outputs(
    step: Step, ei: ExecutorInput, outputs: Mapping[str, Output[Any]], outcome: Outcome
) -> tuple[Outcome, dict[str, RuntimeArtifact]]:
    reported: dict[str, RuntimeArtifact] = {}
    try:
        for port, out in outputs.items():
            metadata: dict[str, Json] = {
                **_json_safe(out.properties),
                DIGEST_KEY: tree_digest(out.path),
                TYPE_KEY: out.type_name,
            }
            art = ei.outputs[port]
            reported[port] = RuntimeArtifact(art.name, art.schema_title, art.uri, metadata)
    except (LooplineError, OSError, TypeError, ValueError) as exc:
        return Outcome(error=f"{type(exc).__name__}: publishing output failed: {exc}"), {}
    return outcome, reported


def _json_safe(props: Mapping[str, Any]) -> dict[str, Json]:
    try:
        value: dict[str, Json] = json.loads(json.dumps(dict(props), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"output properties must be JSON values (finite numbers, strings, lists, dicts): {exc}"
        ) from exc
    return value


def _resolve(
    pipeline: Pipeline,
    step: Step,
    params: Mapping[str, Json],
    ei: ExecutorInput,
    job: StepExec,
    log: TextIO,
) -> StepExecResult:
    """A resolver reads the loopline stores: found, its artifact's bytes are copied to the
    output path; not found (or no store reachable), the output is marked empty and only an
    optional input accepts it."""
    port = next(iter(step.component.outputs))
    art = ei.outputs.get(port)
    if art is None:
        raise InvalidInputError(
            f"Resolver step {step.id!r} output {port!r} has no artifact in the ExecutorInput."
        )
    art.path.mkdir(parents=True, exist_ok=True)
    found: Artifact | None = None
    error: str | None = None
    if job.metadata is None or job.artifacts is None:
        log.write(
            f"resolver {step.id}: no metadata and artifact store reachable; its output is empty\n"
        )
    else:
        try:
            found = step.component.fn(job.metadata, pipeline.name, **params)
            if found is not None:
                with job.artifacts.open_local(found.uri) as src:
                    shutil.copytree(src, art.path, dirs_exist_ok=True)
        except Exception as exc:  # the resolver is user code
            error = f"{type(exc).__name__}: {exc}"
    metadata: dict[str, Json]
    if found is None:
        metadata = {EMPTY_KEY: 1, TYPE_KEY: step.component.outputs[port].type.type_name}
    else:
        metadata = {
            **dict(found.properties),
            DIGEST_KEY: found.digest or tree_digest(art.path),
            TYPE_KEY: found.type_name,
            "loopline.artifact_id": found.id,
        }
    reported = {}
    if error is None:
        reported[port] = RuntimeArtifact(art.name, art.schema_title, art.uri, metadata)
    output = ExecutorOutput(artifacts=reported, parameters={})
    output.write(ei.output_file)
    if error:
        with contextlib.suppress(OSError):
            shutil.rmtree(art.path)
    return StepExecResult(step.id, error, False, output, None)
