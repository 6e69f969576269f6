"""Submit a compiled pipeline to a Kubeflow Pipelines endpoint over its REST API (v2beta1).

Three calls, as the KFP SDK makes them: find the pipeline by name
(``GET /apis/v2beta1/pipelines/names/{name}``); upload the file as a new pipeline
(``POST /apis/v2beta1/pipelines/upload``) or as a new version of it
(``POST /apis/v2beta1/pipelines/upload_version``), both multipart with the field
``uploadfile``; then create a run of that version (``POST /apis/v2beta1/runs``) with the
parameters as ``runtime_config.parameters``. The version name carries the file's digest, so
uploading the same file twice reuses its version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from loopline.errors import BackendError, InvalidInputError, NotFoundError
from loopline.types import Json

API = "/apis/v2beta1"

_KINDS: Mapping[str, tuple[type, ...]] = {
    "NUMBER_INTEGER": (int,),
    "NUMBER_DOUBLE": (int, float),
    "STRING": (str,),
    "BOOLEAN": (bool,),
    "LIST": (list,),
    "STRUCT": (dict,),
}


@dataclass(frozen=True, slots=True)
class SubmittedRun:
    """What the endpoint created."""

    pipeline_id: str
    version_id: str
    run_id: str
    url: str


def check_parameters(spec: Mapping[str, Any], params: Mapping[str, Json]) -> dict[str, Json]:
    """``params`` checked against the pipeline's parameters (``root.inputDefinitions``).

    Raises:
        InvalidInputError: an unknown parameter, or a value of the wrong type.
    """
    declared = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise InvalidInputError(
            f"The pipeline has no parameter {', '.join(map(repr, unknown))}. "
            f"Parameters: {', '.join(sorted(declared)) or '(none)'}."
        )
    out: dict[str, Json] = {}
    for name, value in params.items():
        kind = declared[name].get("parameterType", "STRING")
        types = _KINDS.get(kind, (object,))
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            raise InvalidInputError(
                f"--param {name}={value!r} is not a {kind} value; the pipeline declares "
                f"{name} as {kind}."
            )
        if kind == "NUMBER_DOUBLE" and isinstance(value, int | float):
            value = float(value)
        out[name] = value
    return out


class KfpClient:
    """A small client of the KFP REST API (v2beta1).

    Args:
        host: the endpoint, e.g. ``http://localhost:8080`` (the UI's port-forward) or
            ``https://…/pipeline``.
        token: a bearer token sent as ``Authorization``, or None.
        namespace: the Kubeflow profile namespace (multi-user installs), or None.
        transport: an httpx transport (tests), or None for the network.
    """

    def __init__(
        self,
        host: str,
        *,
        token: str | None = None,
        namespace: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not host.startswith(("http://", "https://")):
            raise InvalidInputError(
                f"--host {host!r} is not an http(s) URL, e.g. http://localhost:8080."
            )
        self.host = host.rstrip("/")
        self.namespace = namespace
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.host, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> KfpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(
        self,
        package: bytes,
        *,
        run_name: str,
        params: Mapping[str, Json],
        pipeline_name: str | None = None,
        experiment_id: str | None = None,
    ) -> SubmittedRun:
        """Upload ``package`` (the compiled YAML) and start a run of it.

        Raises:
            InvalidInputError: the package is not a compiled pipeline, or a parameter is wrong.
            BackendError: the endpoint refused a call; the message quotes its answer.
        """
        import yaml

        try:
            # The pipeline spec, then (loopline compile --stores-secret) the platform config.
            spec = next(iter(yaml.safe_load_all(package)), None)
        except yaml.YAMLError as exc:
            raise InvalidInputError(f"The pipeline file is not YAML: {exc}") from None
        if not isinstance(spec, dict) or "pipelineInfo" not in spec or "root" not in spec:
            raise InvalidInputError(
                "The pipeline file is not a compiled KFP pipeline (no pipelineInfo/root); "
                "make it with loopline compile."
            )
        values = check_parameters(spec, params)
        name = pipeline_name or str(spec["pipelineInfo"].get("name", ""))
        if not name:
            raise InvalidInputError("The pipeline has no pipelineInfo.name; pass --pipeline-name.")
        version_name = f"{name}-{hashlib.sha256(package).hexdigest()[:12]}"
        pipeline_id = self._pipeline_id(name)
        if pipeline_id is None:
            query = {"name": name, "display_name": name}
            created = self._upload(f"{API}/pipelines/upload", package, query)
            pipeline_id = str(created["pipeline_id"])
            version_id = self._version_id(pipeline_id, None)
        else:
            version_id = self._upload_version(pipeline_id, version_name, package)
        body: dict[str, Any] = {
            "display_name": run_name,
            "pipeline_version_reference": {
                "pipeline_id": pipeline_id,
                "pipeline_version_id": version_id,
            },
            "runtime_config": {"parameters": values},
        }
        if experiment_id:
            body["experiment_id"] = experiment_id
        run = self._call("POST", f"{API}/runs", json=body)
        run_id = str(run["run_id"])
        return SubmittedRun(pipeline_id, version_id, run_id, f"{self.host}/#/runs/details/{run_id}")

    # -- calls -------------------------------------------------------------------------------

    def _query(self, extra: Mapping[str, str]) -> dict[str, str]:
        query = dict(extra)
        if self.namespace:
            query["namespace"] = self.namespace
        return query

    def _pipeline_id(self, name: str) -> str | None:
        try:
            found = self._call("GET", f"{API}/pipelines/names/{quote(name, safe='')}")
        except NotFoundError:
            return None
        return str(found["pipeline_id"])

    def _upload(self, path: str, package: bytes, query: Mapping[str, str]) -> dict[str, Any]:
        files = {"uploadfile": ("pipeline.yaml", package, "application/x-yaml")}
        return self._call("POST", path, params=self._query(query), files=files)

    def _upload_version(self, pipeline_id: str, version_name: str, package: bytes) -> str:
        query = {"pipelineid": pipeline_id, "name": version_name, "display_name": version_name}
        try:
            created = self._upload(f"{API}/pipelines/upload_version", package, query)
        except _Conflict:
            return self._version_id(pipeline_id, version_name)
        return str(created["pipeline_version_id"])

    def _version_id(self, pipeline_id: str, display_name: str | None) -> str:
        listing = self._call(
            "GET",
            f"{API}/pipelines/{pipeline_id}/versions",
            params={"page_size": "100", "sort_by": "created_at desc"},
        )
        for version in listing.get("pipeline_versions") or []:
            if display_name is None or version.get("display_name") == display_name:
                return str(version["pipeline_version_id"])
        raise BackendError(
            f"Pipeline {pipeline_id} on {self.host} has no version "
            f"{display_name or '(any)'}; it may have been deleted while submitting. Retry."
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise BackendError(
                f"Kubeflow Pipelines at {self.host} did not answer {method} {path}: {exc}. "
                "Check --host (e.g. kubectl port-forward svc/ml-pipeline-ui 8080:80)."
            ) from exc
        if response.status_code == 404:
            raise NotFoundError(f"{method} {path} on {self.host}: not found.")
        if response.status_code == 409:
            raise _Conflict(f"{method} {path}: already exists")
        if response.status_code >= 400:
            raise BackendError(
                f"Kubeflow Pipelines at {self.host} refused {method} {path} with "
                f"{response.status_code}: {response.text[:500]}"
            )
        try:
            body = response.json()
        except json.JSONDecodeError:
            raise BackendError(
                f"Kubeflow Pipelines at {self.host} answered {method} {path} with non-JSON: "
                f"{response.text[:200]!r}"
            ) from None
        if not isinstance(body, dict):
            raise BackendError(f"{method} {path} answered {body!r}, not a JSON object.")
        return body


class _Conflict(BackendError):
    """409: the object exists already."""
