"""``ControlPlaneClient``: the HTTP client the CLI (and scripts) use, like kubectl's.

Errors come back as the loopline error the server raised (``NotFoundError`` for a 404, …),
with the server's sentence as the message and its ``field`` (when it names one) as the error's
``field``.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

import httpx

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

    def _get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean or None).json()

    # ---- operations --------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._get("/healthz")
        return result

    def apply(self, doc: dict[str, Any], cause: str | None = None) -> dict[str, Any]:
        """Create or update (``{"outcome": created|configured|unchanged, "deployment"}``)."""
        meta = doc.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidDefinitionError(
                f"Deployment field metadata.name = {shown(name)} is invalid: it must be a name.",
                field="metadata.name",
            )
        result: dict[str, Any] = self.request(
            "PUT", f"/v1/deployments/{name}", json=doc, cause=cause
        ).json()
        return result

    def create(self, doc: dict[str, Any], cause: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", "/v1/deployments", json=doc, cause=cause
        ).json()
        return result

    def list_deployments(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._get("/v1/deployments")["items"]
        return items

    def get_deployment(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._get(f"/v1/deployments/{name}")
        return result

    def delete(self, name: str, timeout: float = 120.0) -> None:
        self.request("DELETE", f"/v1/deployments/{name}", timeout=timeout)

    def scale(self, name: str, replicas: int) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "PUT", f"/v1/deployments/{name}/scale", json={"replicas": replicas}
        ).json()
        return result

    def set_model(self, name: str, model: str, cause: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "PUT", f"/v1/deployments/{name}/model", json={"model": model}, cause=cause
        ).json()
        return result

    def rollout_status(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._get(f"/v1/deployments/{name}/rollout")
        return result

    def pause(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", f"/v1/deployments/{name}/rollout/pause"
        ).json()
        return result

    def resume(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", f"/v1/deployments/{name}/rollout/resume"
        ).json()
        return result

    def undo(self, name: str, to_revision: int = 0) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", f"/v1/deployments/{name}/rollout/undo", json={"toRevision": to_revision}
        ).json()
        return result

    def set_autoscaling(self, name: str, block: dict[str, Any] | None) -> dict[str, Any]:
        """Set ``spec.autoscaling`` (HPA v2 form), or remove it with None."""
        result: dict[str, Any] = self.request(
            "PUT", f"/v1/deployments/{name}/autoscaling", json={"autoscaling": block}
        ).json()
        return result

    def promote(self, name: str, full: bool = False) -> dict[str, Any]:
        """``rollout promote``: past the current step (``full``: every remaining step)."""
        result: dict[str, Any] = self.request(
            "POST", f"/v1/deployments/{name}/rollout/promote", json={"full": full}
        ).json()
        return result

    def abort(self, name: str) -> dict[str, Any]:
        """``rollout abort``: all traffic back to the stable revision at once."""
        result: dict[str, Any] = self.request(
            "POST", f"/v1/deployments/{name}/rollout/abort"
        ).json()
        return result

    def retry(self, name: str) -> dict[str, Any]:
        """``rollout retry``: start an aborted rollout over."""
        result: dict[str, Any] = self.request(
            "POST", f"/v1/deployments/{name}/rollout/retry"
        ).json()
        return result

    def apply_template(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Create or update an AnalysisTemplate (``{"outcome", "template"}``)."""
        meta = doc.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidDefinitionError(
                f"AnalysisTemplate field metadata.name = {shown(name)} is invalid: it must be "
                "a name.",
                field="metadata.name",
            )
        result: dict[str, Any] = self.request(
            "PUT", f"/v1/analysistemplates/{name}", json=doc
        ).json()
        return result

    def list_templates(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._get("/v1/analysistemplates")["items"]
        return items

    def get_template(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._get(f"/v1/analysistemplates/{name}")
        return result

    def delete_template(self, name: str) -> None:
        self.request("DELETE", f"/v1/analysistemplates/{name}")

    def apply_trigger(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Create or update a Trigger (``{"outcome", "trigger"}``)."""
        meta = doc.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidDefinitionError(
                f"Trigger field metadata.name = {shown(name)} is invalid: it must be a name.",
                field="metadata.name",
            )
        result: dict[str, Any] = self.request("PUT", f"/v1/triggers/{name}", json=doc).json()
        return result

    def list_triggers(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._get("/v1/triggers")["items"]
        return items

    def get_trigger(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._get(f"/v1/triggers/{name}")
        return result

    def delete_trigger(self, name: str) -> None:
        self.request("DELETE", f"/v1/triggers/{name}")

    def trigger_history(self, name: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The trigger's runs, newest first."""
        params = {} if limit is None else {"limit": limit}
        items: list[dict[str, Any]] = self._get(f"/v1/triggers/{name}/history", **params)["items"]
        return items

    def apply_monitor(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Create or update a Monitor (``{"outcome", "monitor"}``)."""
        meta = doc.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidDefinitionError(
                f"Monitor field metadata.name = {shown(name)} is invalid: it must be a name.",
                field="metadata.name",
            )
        result: dict[str, Any] = self.request("PUT", f"/v1/monitors/{name}", json=doc).json()
        return result

    def list_monitors(self) -> list[dict[str, Any]]:
        """Every Monitor with its ``status`` (a MonitorStatus document)."""
        items: list[dict[str, Any]] = self._get("/v1/monitors")["items"]
        return items

    def get_monitor(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._get(f"/v1/monitors/{name}")
        return result

    def delete_monitor(self, name: str) -> None:
        self.request("DELETE", f"/v1/monitors/{name}")

    def monitor_windows(
        self, name: str, *, version: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Stored windows (WindowResult documents), oldest first; ``limit``: the newest N."""
        found = self._get(f"/v1/monitors/{name}/windows", version=version, limit=limit)
        items: list[dict[str, Any]] = found["items"]
        return items

    def revisions(self, name: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._get(f"/v1/deployments/{name}/revisions")["items"]
        return items

    def replicas(self, name: str | None = None) -> list[dict[str, Any]]:
        path = "/v1/replicas" if name is None else f"/v1/deployments/{name}/replicas"
        items: list[dict[str, Any]] = self._get(path)["items"]
        return items

    def events(self, name: str, limit: int | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._get(f"/v1/deployments/{name}/events", limit=limit)[
            "items"
        ]
        return items

    def replica_log(self, replica_id: str, tail: int | None = None) -> str:
        params = None if tail is None else {"tail": tail}
        return self.request("GET", f"/v1/replicas/{replica_id}/log", params=params).text
