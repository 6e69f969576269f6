"""Kubeflow Pipelines: compile a ``Pipeline`` to KFP v2 IR, run one step inside its
container from KFP's ExecutorInput, and submit a compiled pipeline to a KFP endpoint.

Key contracts:
- ``compile_pipeline`` is pure and returns plain dicts (no kfp import); every step is a
  container component running ``loopline step exec --executor-input {{$}} --step NAME`` in
  loopline's image, which has no ENTRYPOINT. ``platform_spec`` adds the Kubernetes platform
  document that gives every step the stores' settings from a Secret.
- ``execute_step`` always writes the ExecutorOutput (artifact metadata with content digests)
  to ``outputs.outputFile``, and records lineage when given a metadata store.
- ``KfpClient.submit`` uploads the pipeline (or a new version) and creates a run (v2beta1).
"""

from loopline.pipeline.kubeflow.executor_io import (
    ExecutorInput,
    ExecutorOutput,
    RuntimeArtifact,
    local_path,
)
from loopline.pipeline.kubeflow.ir import (
    KfpTarget,
    compile_pipeline,
    platform_spec,
    step_fingerprint,
)
from loopline.pipeline.kubeflow.step_exec import StepExec, StepExecResult, execute_step
from loopline.pipeline.kubeflow.submit import KfpClient, SubmittedRun, check_parameters

__all__ = [
    "ExecutorInput",
    "ExecutorOutput",
    "KfpClient",
    "KfpTarget",
    "RuntimeArtifact",
    "StepExec",
    "StepExecResult",
    "SubmittedRun",
    "check_parameters",
    "compile_pipeline",
    "execute_step",
    "local_path",
    "platform_spec",
    "step_fingerprint",
]
