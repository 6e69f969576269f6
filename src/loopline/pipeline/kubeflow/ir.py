"""Compile a ``Pipeline`` to Kubeflow Pipelines v2 IR (a ``PipelineSpec``) as plain dicts.

Every step becomes one container component whose container runs the generic step runner::

    loopline step exec --executor-input {{$}} --step NAME --pipeline-file FILE
        --code-fingerprint SHA256 --run-name {{$.pipeline_job_name}}

in loopline's image (built by ``loopline build``, which has no ENTRYPOINT, so KFP and
kfp.local can pass this command). ``FILE`` is where the pipeline file is inside the image
(relative to its working directory); the fingerprint is the step's code fingerprint, so a
step refuses to run code other than what was compiled, and KFP's own cache key changes when
the code does. Artifact types map to KFP's system types; parameters keep their types;
``cache``, ``retries`` and the ``cpu``/``memory`` limits of a step are carried over.

Paths: a string constant (a step argument, a component default, a pipeline parameter's
default) that is an absolute path inside the project directory on this machine
(``KfpTarget.project_dir``) becomes the same path under the image's project directory
(``/app``), where ``loopline build --app`` copies the project. An absolute path outside the
project that exists on this machine (the caller's ``exists`` says so) cannot be read by a step
on the cluster: compiling refuses it, naming the step and the parameter.

:func:`platform_spec` is the optional second document of the compiled file, KFP's Kubernetes
platform config: every step gets ``LOOPLINE_DB_URL`` and ``LOOPLINE_ARTIFACT_ROOT`` from a
Secret (the one ``loopline render`` uses, ``loopline-stores``), so that lineage, resolvers
and the Pusher reach loopline's stores from inside the steps on a cluster.

Pure: no I/O (``exists`` is the caller's), no kfp import. The result parses with
``kfp-pipeline-spec`` and loads in kfp.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from loopline import __version__
from loopline.errors import InvalidDefinitionError, InvalidInputError
from loopline.pipeline.artifact_types import ArtifactType, Dataset, Metrics, Model
from loopline.pipeline.component import ParameterSpec
from loopline.pipeline.fingerprint import code_parts, fingerprint
from loopline.pipeline.graph import Pipeline
from loopline.pipeline.step import OutputRef, Param, Step
from loopline.types import Json

SCHEMA_VERSION = "2.1.0"
EXECUTOR_INPUT = "{{$}}"
JOB_NAME = "{{$.pipeline_job_name}}"
RETRY_BACKOFF = "1s"
RETRY_BACKOFF_FACTOR = 2.0
RETRY_BACKOFF_MAX = "30s"
STORE_VARIABLES = ("LOOPLINE_DB_URL", "LOOPLINE_ARTIFACT_ROOT")
"""The settings a step needs to reach loopline's stores (the keys of the stores Secret)."""
_SECRET_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
IMAGE_PROJECT_DIR = "/app"
"""Where ``loopline build --app DIR`` copies the project inside the image (its working
directory)."""

PARAMETER_TYPES: Mapping[type, str] = {
    bool: "BOOLEAN",
    int: "NUMBER_INTEGER",
    float: "NUMBER_DOUBLE",
    str: "STRING",
    list: "LIST",
    dict: "STRUCT",
}

_SYSTEM_TYPES: tuple[tuple[type[ArtifactType], str], ...] = (
    (Dataset, "system.Dataset"),  # Examples is a Dataset
    (Model, "system.Model"),
    (Metrics, "system.Metrics"),
)

_MEMORY_UNITS = {
    "": 1,
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


@dataclass(frozen=True, slots=True)
class KfpTarget:
    """Where the compiled steps run.

    Attributes:
        image: the container image holding loopline and the project (``loopline build``).
        pipeline_file: the pipeline file's path inside the image, relative to its working
            directory (``/app`` for ``loopline build --app``) or absolute.
        attribute: the ``Pipeline`` object's name when the file defines several.
        project_dir: the project's absolute directory on this machine (what ``loopline build
            --app`` copies to :data:`IMAGE_PROJECT_DIR`); path constants inside it are
            rewritten to the image's. ``None``: constants are left as they are.
    """

    image: str
    pipeline_file: str
    attribute: str | None = None
    project_dir: str | None = None

    def __post_init__(self) -> None:
        if not self.image or any(c.isspace() for c in self.image):
            raise InvalidInputError(
                f"Image {self.image!r} is not an image reference; pass --image NAME[:TAG]."
            )
        if not self.pipeline_file:
            raise InvalidInputError("The pipeline file's path in the image is empty.")
        if self.project_dir is not None and not posixpath.isabs(self.project_dir):
            raise InvalidInputError(
                f"Project directory {self.project_dir!r} is not an absolute path; resolve it."
            )

    def in_image(self, value: str) -> str | None:
        """``value``'s path inside the image when it is an absolute path inside the project
        directory, else ``None``."""
        if self.project_dir is None or not value.startswith("/"):
            return None
        root = posixpath.normpath(self.project_dir)
        path = posixpath.normpath(value)
        if path == root:
            return IMAGE_PROJECT_DIR
        if path.startswith(root.rstrip("/") + "/"):
            return IMAGE_PROJECT_DIR + path[len(root.rstrip("/")) :]
        return None


def system_type(artifact_type: type[ArtifactType]) -> str:
    """KFP's schema title for a loopline artifact type (``system.Artifact`` when none fits)."""
    for base, title in _SYSTEM_TYPES:
        if issubclass(artifact_type, base):
            return title
    return "system.Artifact"


def kfp_name(kind: str, name: str) -> str:
    """KFP's sanitized form of a name: lower case, runs of other characters as one ``-``."""
    return f"{kind}-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def step_fingerprint(step: Step) -> str:
    """The code fingerprint ``loopline step exec`` checks: the step's function and the
    project-local code it calls (as in the local runner's cache key)."""
    return fingerprint(code_parts(step.component.fn))


def compile_pipeline(
    pipeline: Pipeline, target: KfpTarget, *, exists: Callable[[str], bool] = lambda _: False
) -> dict[str, Any]:
    """The ``PipelineSpec`` of ``pipeline`` as a JSON-able dict.

    Args:
        exists: whether a path exists on this machine (``os.path.exists`` from the CLI); an
            absolute path constant outside the project directory that exists is refused.

    Raises:
        InvalidDefinitionError: two step names differ only in what KFP sanitizes away; a
            parameter holds a path on this machine that the image does not have (the message
            names the step and the parameter).
    """
    paths = _Paths(target, exists)
    names: dict[str, str] = {}
    for step in pipeline.steps:
        task = kfp_name("task", step.id)[len("task-") :]
        if task in names:
            raise InvalidDefinitionError(
                f"Pipeline {pipeline.name!r}: steps {names[task]!r} and {step.id!r} both become "
                f"the Kubeflow task {task!r}; rename one with .with_id(...)."
            )
        names[task] = step.id
    task_of = {step_id: task for task, step_id in names.items()}
    components: dict[str, Any] = {}
    executors: dict[str, Any] = {}
    tasks: dict[str, Any] = {}
    for step in pipeline.steps:
        task = task_of[step.id]
        comp_name, exec_name = f"comp-{task}", f"exec-{task}"
        components[comp_name] = _component(step, exec_name, paths)
        executors[exec_name] = {"container": _container(step, target)}
        tasks[task] = _task(step, comp_name, task_of, paths)
    root: dict[str, Any] = {"dag": {"tasks": tasks}}
    params = pipeline.params()
    if params:
        root["inputDefinitions"] = {
            "parameters": {
                name: _root_parameter(pipeline, name, default, paths)
                for name, default in params.items()
            }
        }
    spec: dict[str, Any] = {
        "pipelineInfo": {"name": kfp_name("p", pipeline.name)[2:]},
        "schemaVersion": SCHEMA_VERSION,
        "sdkVersion": f"loopline-{__version__}",
        "components": components,
        "deploymentSpec": {"executors": executors},
        "root": root,
    }
    if pipeline.description:
        spec["pipelineInfo"]["description"] = pipeline.description
    spec["pipelineInfo"]["displayName"] = pipeline.name
    return spec


@dataclass(frozen=True, slots=True)
class _Paths:
    """Rewrites path constants into the image, or refuses those the image cannot have."""

    target: KfpTarget
    exists: Callable[[str], bool]

    def __call__(self, value: Json, where: str) -> Json:
        if isinstance(value, str):
            return self._one(value, where)
        if isinstance(value, list):
            return [self(v, where) for v in value]
        if isinstance(value, dict):
            return {k: self(v, where) for k, v in value.items()}
        return value

    def _one(self, value: str, where: str) -> str:
        mapped = self.target.in_image(value)
        if mapped is not None:
            return mapped
        if value.startswith("/") and "\n" not in value and self.exists(value):
            inside = (
                f"outside the project directory {self.target.project_dir!r} that "
                "loopline build --app copies to the image's /app"
                if self.target.project_dir
                else "and the image has only what loopline build --app copied to /app"
            )
            raise InvalidDefinitionError(
                f"{where} is {value!r}, a path on this machine {inside}; a step on Kubeflow "
                "cannot read it. Move it into the project directory, or use a path the "
                "cluster mounts (gs://B/K is /gcs/B/K in the step)."
            )
        return value


def platform_spec(spec: Mapping[str, Any], stores_secret: str) -> dict[str, Any]:
    """KFP's Kubernetes platform document for ``spec``: every executor gets the keys of
    :data:`STORE_VARIABLES` from the Secret ``stores_secret`` as environment variables.

    Raises:
        InvalidInputError: ``stores_secret`` is not a Kubernetes object name.
    """
    if len(stores_secret) > 253 or not _SECRET_NAME.fullmatch(stores_secret):
        raise InvalidInputError(
            f"Secret name {stores_secret!r} is not a Kubernetes name: lowercase letters, digits, "
            "'-' and '.', e.g. loopline-stores."
        )
    executors = {
        name: {
            "secretAsEnv": [
                {
                    "secretName": stores_secret,
                    "keyToEnv": [{"secretKey": v, "envVar": v} for v in STORE_VARIABLES],
                }
            ]
        }
        for name in spec["deploymentSpec"]["executors"]
    }
    return {"platforms": {"kubernetes": {"deploymentSpec": {"executors": executors}}}}


def _artifact_type(artifact_type: type[ArtifactType]) -> dict[str, str]:
    return {"schemaTitle": system_type(artifact_type), "schemaVersion": "0.0.1"}


def _component(step: Step, exec_name: str, paths: _Paths) -> dict[str, Any]:
    comp = step.component
    out: dict[str, Any] = {"executorLabel": exec_name}
    inputs: dict[str, Any] = {}
    if comp.inputs:
        inputs["artifacts"] = {
            name: {
                "artifactType": _artifact_type(port.type),
                **({"isOptional": True} if port.optional else {}),
            }
            for name, port in comp.inputs.items()
        }
    if comp.parameters:
        inputs["parameters"] = {
            name: _parameter(spec, paths, f"Step {step.id!r} parameter {name!r} (its default)")
            for name, spec in comp.parameters.items()
        }
    if inputs:
        out["inputDefinitions"] = inputs
    if comp.outputs:
        out["outputDefinitions"] = {
            "artifacts": {
                name: {"artifactType": _artifact_type(port.type)}
                for name, port in comp.outputs.items()
            }
        }
    return out


def _parameter(spec: ParameterSpec, paths: _Paths, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {"parameterType": PARAMETER_TYPES[spec.type]}
    if spec.has_default or spec.optional:
        out["isOptional"] = True
    if spec.has_default and spec.default is not None and not isinstance(spec.default, Param):
        out["defaultValue"] = paths(spec.default, where)
    return out


def _root_parameter(
    pipeline: Pipeline, name: str, default: Json, paths: _Paths
) -> dict[str, Any]:
    kinds = {
        PARAMETER_TYPES[s.component.parameters[arg].type]
        for s in pipeline.steps
        for arg, value in s.arguments.items()
        if isinstance(value, Param) and value.name == name
    }
    if len(kinds) != 1:
        raise InvalidDefinitionError(
            f"Pipeline {pipeline.name!r}: parameter {name!r} feeds step parameters of types "
            f"{', '.join(sorted(kinds))}; Kubeflow needs one type per pipeline parameter."
        )
    out: dict[str, Any] = {"parameterType": kinds.pop(), "isOptional": True}
    if default is not None:
        out["defaultValue"] = paths(default, f"Pipeline parameter {name!r} (its default)")
    return out


def _task(
    step: Step, comp_name: str, task_of: Mapping[str, str], paths: _Paths
) -> dict[str, Any]:
    artifacts: dict[str, Any] = {}
    parameters: dict[str, Any] = {}
    for name, value in step.arguments.items():
        if isinstance(value, OutputRef):
            artifacts[name] = {
                "taskOutputArtifact": {
                    "producerTask": task_of[value.step_id],
                    "outputArtifactKey": value.port,
                }
            }
        elif isinstance(value, Param):
            parameters[name] = {"componentInputParameter": value.name}
        elif name in step.component.parameters:
            if value is None and step.component.parameters[name].default is None:
                continue  # the component's own default, None, applies
            constant = paths(value, f"Step {step.id!r} parameter {name!r}")
            parameters[name] = {"runtimeValue": {"constant": constant}}
    out: dict[str, Any] = {
        "taskInfo": {"name": step.id},
        "componentRef": {"name": comp_name},
        "cachingOptions": {"enableCache": bool(step.options.cache)},
    }
    if artifacts or parameters:
        out["inputs"] = {
            **({"artifacts": artifacts} if artifacts else {}),
            **({"parameters": parameters} if parameters else {}),
        }
    upstream = sorted({task_of[s] for s in step.upstream_ids()})
    if upstream:
        out["dependentTasks"] = upstream
    if step.options.retries:
        out["retryPolicy"] = {
            "maxRetryCount": step.options.retries,
            "backoffDuration": RETRY_BACKOFF,
            "backoffFactor": RETRY_BACKOFF_FACTOR,
            "backoffMaxDuration": RETRY_BACKOFF_MAX,
        }
    return out


def _container(step: Step, target: KfpTarget) -> dict[str, Any]:
    args = [
        "--executor-input",
        EXECUTOR_INPUT,
        "--step",
        step.id,
        "--pipeline-file",
        target.pipeline_file,
        "--code-fingerprint",
        step_fingerprint(step),
        "--run-name",
        JOB_NAME,
    ]
    if target.attribute:
        args += ["--pipeline", target.attribute]
    container: dict[str, Any] = {
        "image": target.image,
        "command": ["loopline", "step", "exec"],
        "args": args,
    }
    resources: dict[str, Any] = {}
    if step.options.cpu is not None:
        resources["cpuLimit"] = cpu_cores(step.options.cpu)
        resources["resourceCpuLimit"] = step.options.cpu
    if step.options.memory is not None:
        resources["memoryLimit"] = memory_gigabytes(step.options.memory)
        resources["resourceMemoryLimit"] = step.options.memory
    if resources:
        container["resources"] = resources
    return container


def cpu_cores(quantity: str) -> float:
    """``"500m"`` → 0.5, ``"2"`` → 2.0 (the quantity was checked by ``StepOptions``)."""
    if quantity.endswith("m"):
        return float(quantity[:-1]) / 1000
    return float(quantity)


def memory_gigabytes(quantity: str) -> float:
    """A memory quantity in decimal gigabytes, as KFP's ``memoryLimit`` (``"4Gi"`` →
    4.294967296)."""
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", quantity)
    if match is None or match.group(2) not in _MEMORY_UNITS:
        raise InvalidDefinitionError(f"Memory quantity {quantity!r} is not valid, e.g. '4Gi'.")
    return float(match.group(1)) * _MEMORY_UNITS[match.group(2)] / 10**9
