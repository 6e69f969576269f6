"""KFP's ExecutorInput (what a step container receives as ``{{$}}``) and ExecutorOutput (what
it writes to ``outputs.outputFile``), as typed values.

Artifact URIs map to local paths the way KFP's launcher and ``kfp.dsl`` do: ``gs://B/K`` →
``/gcs/B/K``, ``s3://`` → ``/s3/``, ``minio://`` → ``/minio/``, ``oci://A/B`` →
``/oci/A_B/models``; anything else (kfp.local's pipeline root) is already a local path.
Artifact metadata carries the artifact's properties plus loopline's own keys, prefixed
``loopline.``: the content digest and the loopline type name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopline.errors import InvalidInputError
from loopline.types import Json

DIGEST_KEY = "loopline.digest"
TYPE_KEY = "loopline.type"
EMPTY_KEY = "loopline.empty"
RESERVED_PREFIX = "loopline."

_MOUNTS = (("gs://", "/gcs/"), ("s3://", "/s3/"), ("minio://", "/minio/"))


def local_path(uri: str) -> Path:
    """Where the bytes of the artifact at ``uri`` are inside the step's container."""
    for prefix, mount in _MOUNTS:
        if uri.startswith(prefix):
            return Path(mount + uri[len(prefix) :])
    if uri.startswith("oci://"):
        return Path("/oci/" + uri[len("oci://") :].replace("/", "_")) / "models"
    if uri.startswith("file://"):
        return Path(uri[len("file://") :])
    if not uri.startswith("/"):
        raise InvalidInputError(
            f"Artifact URI {uri!r} is neither a local absolute path nor gs://, s3://, minio:// "
            "or oci://; the step cannot find its bytes."
        )
    return Path(uri)


@dataclass(frozen=True, slots=True)
class RuntimeArtifact:
    """One artifact of an ExecutorInput: its name, KFP type, URI and metadata."""

    name: str
    schema_title: str
    uri: str
    metadata: Mapping[str, Json]

    @property
    def path(self) -> Path:
        """The local path of its bytes."""
        return local_path(self.uri)

    @property
    def digest(self) -> str | None:
        """The content digest the producing step recorded, if a loopline step produced it."""
        value = self.metadata.get(DIGEST_KEY)
        return value if isinstance(value, str) else None

    @property
    def empty(self) -> bool:
        """True for a resolver's output that found nothing."""
        return bool(self.metadata.get(EMPTY_KEY))

    def properties(self) -> dict[str, Json]:
        """The metadata without loopline's own keys."""
        return {k: v for k, v in self.metadata.items() if not k.startswith(RESERVED_PREFIX)}


@dataclass(frozen=True, slots=True)
class ExecutorInput:
    """The parts of KFP's ExecutorInput a loopline step uses."""

    parameters: Mapping[str, Json]
    inputs: Mapping[str, RuntimeArtifact]
    outputs: Mapping[str, RuntimeArtifact]
    output_parameters: Mapping[str, str]
    output_file: Path

    @classmethod
    def parse(cls, text: str) -> ExecutorInput:
        """Read the ``{{$}}`` JSON.

        Raises:
            InvalidInputError: not JSON, or a field is missing or of the wrong shape; the
                message names the field.
        """
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            shown = text if len(text) <= 60 else text[:60] + "…"
            raise InvalidInputError(
                f"--executor-input {shown!r} is not JSON ({exc}); KFP passes it as '{{{{$}}}}'."
            ) from None
        if not isinstance(doc, dict):
            raise InvalidInputError("--executor-input must be a JSON object (KFP's ExecutorInput).")
        inputs = _obj(doc, "inputs", "inputs", required=False)
        outputs = _obj(doc, "outputs", "outputs", required=True)
        output_file = outputs.get("outputFile")
        if not isinstance(output_file, str) or not output_file:
            raise InvalidInputError(
                "ExecutorInput field outputs.outputFile is missing; it is where the step writes "
                "its ExecutorOutput."
            )
        params = _obj(inputs, "parameterValues", "inputs.parameterValues", required=False)
        out_params = _obj(outputs, "parameters", "outputs.parameters", required=False)
        return cls(
            parameters=dict(params),
            inputs=_artifacts(inputs, "inputs"),
            outputs=_artifacts(outputs, "outputs"),
            output_parameters={
                k: str(_obj(out_params, k, f"outputs.parameters.{k}", required=True)["outputFile"])
                for k in out_params
            },
            output_file=Path(output_file),
        )


def _obj(doc: Mapping[str, Any], key: str, field: str, *, required: bool) -> dict[str, Any]:
    value = doc.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise InvalidInputError(f"ExecutorInput field {field} must be an object, got {value!r}.")
    return value


def _artifacts(section: Mapping[str, Any], where: str) -> dict[str, RuntimeArtifact]:
    found: dict[str, RuntimeArtifact] = {}
    for port, entry in _obj(section, "artifacts", f"{where}.artifacts", required=False).items():
        field = f"{where}.artifacts.{port}"
        if not isinstance(entry, dict):
            raise InvalidInputError(f"ExecutorInput field {field} must be an object.")
        items = entry.get("artifacts")
        if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict):
            raise InvalidInputError(
                f"ExecutorInput field {field}.artifacts must hold exactly one artifact."
            )
        item = items[0]
        uri = item.get("uri")
        if not isinstance(uri, str) or not uri:
            raise InvalidInputError(f"ExecutorInput field {field}.artifacts[0].uri is missing.")
        metadata = item.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise InvalidInputError(f"ExecutorInput field {field}.artifacts[0].metadata: object.")
        schema = (item.get("type") or {}).get("schemaTitle", "system.Artifact")
        found[port] = RuntimeArtifact(str(item.get("name", port)), str(schema), uri, metadata)
    return found


@dataclass(frozen=True, slots=True)
class ExecutorOutput:
    """What the step reports back: each output artifact's URI and metadata, and output
    parameter values."""

    artifacts: Mapping[str, RuntimeArtifact]
    parameters: Mapping[str, Json]

    def to_json(self) -> dict[str, Any]:
        """KFP's ExecutorOutput JSON."""
        out: dict[str, Any] = {
            "artifacts": {
                port: {
                    "artifacts": [
                        {"name": a.name, "uri": a.uri, "metadata": dict(a.metadata)}
                    ]
                }
                for port, a in self.artifacts.items()
            }
        }
        if self.parameters:
            out["parameterValues"] = dict(self.parameters)
        return out

    def write(self, path: Path) -> None:
        """Write it to ``path`` (``outputs.outputFile``), creating the folder."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True), encoding="utf-8")
        tmp.replace(path)
