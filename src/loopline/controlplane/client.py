"""``ControlPlaneClient``: the HTTP client the CLI (and scripts) use, like kubectl's.

Its methods send and return the wire types of :mod:`loopline.controlplane.wire` (the same
types the API declares in its route table and OpenAPI document): ``client.get_deployment(n)
.status.model.pinned``, not ``doc["status"]["model"]["pinned"]``; ``wire_codec.to_json`` gives
the JSON back (what ``get -o yaml`` prints). Fields the server adds later are ignored.

Errors come back as the loopline error the server raised (``NotFoundError`` for a 404, …),
with the server's sentence as the message and its ``field`` (when it names one) as the error's
``field``.
"""

from __future__ import annotations

import ipaddress
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from loopline.controlplane import wire as w
from loopline.controlplane.wire_codec import Doc, from_json, to_json
from loopline.errors import (
    AlreadyExistsError,
    BackendError,
    ConfigurationError,
    ConflictError,
    InvalidDefinitionError,
    InvalidInputError,
    LooplineError,
    NotFoundError,
    StepTimeoutError,
    UnauthorizedError,
    shown,
)

T = TypeVar("T")

_ERRORS: dict[str, type[LooplineError]] = {
    "Invalid": InvalidDefinitionError,
    "BadRequest": InvalidInputError,
    "NotFound": NotFoundError,
    "AlreadyExists": AlreadyExistsError,
    "Conflict": ConflictError,
    "Unauthorized": UnauthorizedError,
    "Timeout": StepTimeoutError,
    "MisdirectedRequest": ConfigurationError,
}


def check_token_transport(url: str) -> None:
    """Refuse a URL over which the bearer token would cross a network in clear text: the
    token goes only over ``https://`` or to a loopback address (``127.0.0.1``, ``[::1]``,
    ``localhost``).

    Raises:
        ConfigurationError: plain ``http://`` (or no scheme) to any other host; the message
            names ``LOOPLINE_CONTROLPLANE_URL``.
    """
    parts = urlsplit(url)
    if parts.scheme == "https":
        return
    host = (parts.hostname or "").lower()
    if parts.scheme == "http" and _is_loopback(host):
        return
    raise ConfigurationError(
        f"LOOPLINE_CONTROLPLANE_URL={url!r} would send the control-plane token in clear text "
        f"to {host or 'an unknown host'!r}; use an https:// URL (a TLS proxy in front of the "
        "control plane), or a loopback one (http://127.0.0.1:PORT, e.g. through ssh -L)."
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ControlPlaneClient:
    """Talks to one control plane.

    Args:
        url: base URL (``http://127.0.0.1:7471``).
        token: bearer token for mutations (None: reads only).
        timeout: seconds per request (deletes wait for draining: see :meth:`delete`).
    """

    def __init__(self, url: str, *, token: str | None, timeout: float = 30.0) -> None:
        if token is not None:
            check_token_transport(url)
        self.url = url.rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ControlPlaneClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- transport ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        cause: str | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """One request; raises the loopline error matching an error response.

        Raises:
            BackendError: the control plane cannot be reached or answered 5xx.
        """
        headers = {"X-Loopline-Cause": cause} if cause else None
        kwargs: dict[str, Any] = {}
        if timeout is not None:
            kwargs["timeout"] = timeout
        try:
            response = self._http.request(
                method, path, json=json, params=params, headers=headers, **kwargs
            )
        except httpx.TimeoutException:
            raise StepTimeoutError(
                f"The control plane at {self.url} did not answer {method} {path} in time."
            ) from None
        except httpx.HTTPError as exc:
            raise BackendError(
                f"Cannot reach the control plane at {self.url} ({exc}); check that it runs "
                "(loopline controlplane) or unset LOOPLINE_CONTROLPLANE_URL."
            ) from None
        if response.is_success:
            return response
        field: str | None = None
        try:
            body = response.json()
            message, reason = str(body["error"]), str(body.get("reason", ""))
            field = body["field"] if isinstance(body.get("field"), str) else None
        except (ValueError, KeyError, TypeError):
            message = f"{method} {path} answered {response.status_code}: {response.text[:200]}"
            reason = ""
        raise _ERRORS.get(reason, BackendError)(message, field=field)

    def _get(self, tp: type[T], path: str, **params: Any) -> T:
        clean = {k: v for k, v in params.items() if v is not None}
        return from_json(tp, self.request("GET", path, params=clean or None).json())

    def _send(
        self, tp: type[T], method: str, path: str, body: Any = None, cause: str | None = None
    ) -> T:
        return from_json(tp, self.request(method, path, json=body, cause=cause).json())

    # ---- operations --------------------------------------------------------------------------

    def health(self) -> w.Health:
        return self._get(w.Health, "/healthz")

    def apply(self, doc: dict[str, Any], cause: str | None = None) -> w.DeploymentApplied:
        """Create or update (``outcome``: created, configured or unchanged)."""
        name = _document_name(doc, "Deployment")
        return self._send(w.DeploymentApplied, "PUT", f"/v1/deployments/{name}", doc, cause)

    def create(self, doc: dict[str, Any], cause: str | None = None) -> w.DeploymentApplied:
        return self._send(w.DeploymentApplied, "POST", "/v1/deployments", doc, cause)

    def list_deployments(self) -> tuple[w.Deployment, ...]:
        return self._get(w.DeploymentList, "/v1/deployments").items

    def get_deployment(self, name: str) -> w.Deployment:
        return self._get(w.Deployment, f"/v1/deployments/{name}")

    def delete(self, name: str, timeout: float = 120.0) -> None:
        self.request("DELETE", f"/v1/deployments/{name}", timeout=timeout)

    def scale(self, name: str, replicas: int) -> w.Deployment:
        body = to_json(w.ScaleRequest(replicas))
        return self._send(w.Deployment, "PUT", f"/v1/deployments/{name}/scale", body)

    def set_model(self, name: str, model: str, cause: str | None = None) -> w.Deployment:
        body = to_json(w.ModelRequest(model))
        return self._send(w.Deployment, "PUT", f"/v1/deployments/{name}/model", body, cause)

    def rollout_status(self, name: str) -> w.RolloutStatus:
        return self._get(w.RolloutStatus, f"/v1/deployments/{name}/rollout")

    def pause(self, name: str) -> w.Deployment:
        return self._send(w.Deployment, "POST", f"/v1/deployments/{name}/rollout/pause")

    def resume(self, name: str) -> w.Deployment:
        return self._send(w.Deployment, "POST", f"/v1/deployments/{name}/rollout/resume")

    def undo(self, name: str, to_revision: int = 0) -> w.Undone:
        body = to_json(w.UndoRequest(to_revision))
        return self._send(w.Undone, "POST", f"/v1/deployments/{name}/rollout/undo", body)

    def set_autoscaling(self, name: str, block: dict[str, Any] | None) -> w.Deployment:
        """Set ``spec.autoscaling`` (HPA v2 form), or remove it with None."""
        body = to_json(w.AutoscalingRequest(block))
        return self._send(w.Deployment, "PUT", f"/v1/deployments/{name}/autoscaling", body)

    def promote(self, name: str, full: bool = False) -> w.Deployment:
        """``rollout promote``: past the current step (``full``: every remaining step)."""
        body = to_json(w.PromoteRequest(full))
        return self._send(w.Deployment, "POST", f"/v1/deployments/{name}/rollout/promote", body)

    def abort(self, name: str) -> w.Deployment:
        """``rollout abort``: all traffic back to the stable revision at once."""
        return self._send(w.Deployment, "POST", f"/v1/deployments/{name}/rollout/abort")

    def retry(self, name: str) -> w.Deployment:
        """``rollout retry``: start an aborted rollout over."""
        return self._send(w.Deployment, "POST", f"/v1/deployments/{name}/rollout/retry")

    def apply_template(self, doc: dict[str, Any]) -> w.TemplateApplied:
        """Create or update an AnalysisTemplate."""
        name = _document_name(doc, "AnalysisTemplate")
        return self._send(w.TemplateApplied, "PUT", f"/v1/analysistemplates/{name}", doc)

    def list_templates(self) -> tuple[w.Document, ...]:
        return self._get(w.DocumentList, "/v1/analysistemplates").items

    def get_template(self, name: str) -> w.Document:
        return self._get(w.Document, f"/v1/analysistemplates/{name}")

    def delete_template(self, name: str) -> None:
        self.request("DELETE", f"/v1/analysistemplates/{name}")

    def apply_trigger(self, doc: dict[str, Any]) -> w.TriggerApplied:
        """Create or update a Trigger."""
        name = _document_name(doc, "Trigger")
        return self._send(w.TriggerApplied, "PUT", f"/v1/triggers/{name}", doc)

    def list_triggers(self) -> tuple[w.Document, ...]:
        return self._get(w.DocumentList, "/v1/triggers").items

    def get_trigger(self, name: str) -> w.Document:
        return self._get(w.Document, f"/v1/triggers/{name}")

    def delete_trigger(self, name: str) -> None:
        self.request("DELETE", f"/v1/triggers/{name}")

    def trigger_history(self, name: str, limit: int | None = None) -> tuple[w.TriggerRun, ...]:
        """The trigger's runs, newest first."""
        return self._get(w.TriggerRunList, f"/v1/triggers/{name}/history", limit=limit).items

    def apply_monitor(self, doc: dict[str, Any]) -> w.MonitorApplied:
        """Create or update a Monitor."""
        name = _document_name(doc, "Monitor")
        return self._send(w.MonitorApplied, "PUT", f"/v1/monitors/{name}", doc)

    def list_monitors(self) -> tuple[w.Document, ...]:
        """Every Monitor with its ``status`` (a MonitorStatus document)."""
        return self._get(w.DocumentList, "/v1/monitors").items

    def get_monitor(self, name: str) -> w.Document:
        return self._get(w.Document, f"/v1/monitors/{name}")

    def delete_monitor(self, name: str) -> None:
        self.request("DELETE", f"/v1/monitors/{name}")

    def monitor_windows(
        self, name: str, *, version: str | None = None, limit: int | None = None
    ) -> tuple[Doc, ...]:
        """Stored windows (WindowResult documents), oldest first; ``limit``: the newest N."""
        path = f"/v1/monitors/{name}/windows"
        return self._get(w.WindowList, path, version=version, limit=limit).items

    def revisions(self, name: str) -> tuple[w.Revision, ...]:
        return self._get(w.RevisionList, f"/v1/deployments/{name}/revisions").items

    def replicas(self, name: str | None = None) -> tuple[w.Replica, ...]:
        path = "/v1/replicas" if name is None else f"/v1/deployments/{name}/replicas"
        return self._get(w.ReplicaList, path).items

    def events(self, name: str, limit: int | None = None) -> tuple[w.Event, ...]:
        return self._get(w.EventList, f"/v1/deployments/{name}/events", limit=limit).items

    def replica_log(self, replica_id: str, tail: int | None = None) -> str:
        params = None if tail is None else {"tail": tail}
        return self.request("GET", f"/v1/replicas/{replica_id}/log", params=params).text


def _document_name(doc: dict[str, Any], kind: str) -> str:
    """``metadata.name`` of a document about to be sent (checked here: it goes in the URL)."""
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        raise InvalidDefinitionError(
            f"{kind} field metadata.name = {shown(name)} is invalid: it must be a name.",
            field="metadata.name",
        )
    return name
