"""The control plane API's route table: the one place each route's path, methods, handler,
summary, request and response types and error codes are declared. The app's routes
(:func:`loopline.controlplane.api.create_app`) and the OpenAPI document
(:mod:`loopline.controlplane.openapi`) are both built from it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopline.controlplane import wire as w
from loopline.controlplane.openapi import DEPLOYMENT_DOCUMENT, Endpoint, document_schema
from loopline.controlplane.wire_codec import Doc

if TYPE_CHECKING:
    from loopline.controlplane.api import ApiHandlers


def api_endpoints(api: ApiHandlers) -> list[Endpoint]:
    """Every route of the API, its handler taken from ``api``."""
    deployment_doc = DEPLOYMENT_DOCUMENT
    template_doc = document_schema("AnalysisTemplate", ["metrics"], "docs/analysis.md")
    trigger_doc = document_schema("Trigger", ["model", "on", "run"], "docs/triggers.md")
    monitor_doc = document_schema("Monitor", ["deployment", "window"], "docs/monitoring.md")
    limit = ("limit", {"type": "integer", "minimum": 0, "maximum": 999999999})
    dep = "/v1/deployments/{name}"
    return [
        Endpoint(("GET",), "/healthz", api.healthz, "Liveness of the control plane", w.Health),
        Endpoint(("GET",), "/openapi.json", api.openapi, "This document", Doc),
        Endpoint(("GET",), "/v1/deployments", api.list_deployments,
                 "List deployments (and, under 'unreadable', those whose stored record this "
                 "version refuses, with why)", w.DeploymentList, errors=(503,)),
        Endpoint(("POST",), "/v1/deployments", api.create_deployment, "Create a deployment",
                 w.DeploymentApplied, deployment_doc, created=True,
                 errors=(400, 409, 413, 503)),
        Endpoint(("GET",), dep, api.get_deployment, "Get a deployment", w.Deployment,
                 errors=(400, 404, 409, 503)),
        Endpoint(("PUT",), dep, api.put_deployment, "Apply (create or update) a deployment",
                 w.DeploymentApplied, deployment_doc, created=True,
                 errors=(400, 409, 413, 503)),
        Endpoint(("DELETE",), dep, api.delete_deployment,
                 "Delete a deployment, its replicas and router", w.Deleted,
                 errors=(400, 404, 409, 503, 504)),
        Endpoint(("PUT", "PATCH"), f"{dep}/scale", api.scale, "Set the replica count",
                 w.Deployment, w.ScaleRequest, errors=(400, 404, 409, 413, 503)),
        Endpoint(("PUT",), f"{dep}/model", api.set_model, "Point at another model reference",
                 w.Deployment, w.ModelRequest, errors=(400, 404, 409, 413, 503)),
        Endpoint(("PUT",), f"{dep}/autoscaling", api.set_autoscaling,
                 "Set spec.autoscaling (HPA v2 fields), or remove it with null", w.Deployment,
                 w.AutoscalingRequest, errors=(400, 404, 409, 413, 503)),
        Endpoint(("GET",), f"{dep}/rollout", api.rollout_status,
                 "Rollout status (done / failed / message, as kubectl's)", w.RolloutStatus,
                 errors=(400, 404, 503)),
        Endpoint(("POST",), f"{dep}/rollout/pause", api.pause, "Pause the rollout",
                 w.Deployment, errors=(400, 404, 409, 503)),
        Endpoint(("POST",), f"{dep}/rollout/resume", api.resume, "Resume the rollout",
                 w.Deployment, errors=(400, 404, 409, 503)),
        Endpoint(("POST",), f"{dep}/rollout/undo", api.undo,
                 "Roll back to a revision (0: the previous one)", w.Undone, w.UndoRequest,
                 errors=(400, 404, 409, 413, 503), optional_body=True),
        Endpoint(("POST",), f"{dep}/rollout/promote", api.promote,
                 "Canary: go past the current step (full: every remaining step); BlueGreen: "
                 "switch traffic to the preview", w.Deployment, w.PromoteRequest,
                 errors=(400, 404, 409, 413, 503), optional_body=True),
        Endpoint(("POST",), f"{dep}/rollout/abort", api.abort,
                 "Send all traffic back to the stable revision at once (phase Degraded)",
                 w.Deployment, errors=(400, 404, 409, 503)),
        Endpoint(("POST",), f"{dep}/rollout/retry", api.retry, "Start an aborted rollout over",
                 w.Deployment, errors=(400, 404, 409, 503)),
        Endpoint(("GET",), "/v1/analysistemplates", api.list_templates,
                 "List AnalysisTemplates", w.DocumentList, errors=(503,)),
        Endpoint(("GET",), "/v1/analysistemplates/{name}", api.get_template,
                 "Get an AnalysisTemplate", w.Document, errors=(400, 404, 503)),
        Endpoint(("PUT",), "/v1/analysistemplates/{name}", api.put_template,
                 "Apply (create or update) an AnalysisTemplate", w.TemplateApplied,
                 template_doc, created=True, errors=(400, 413, 503)),
        Endpoint(("DELETE",), "/v1/analysistemplates/{name}", api.delete_template,
                 "Delete an AnalysisTemplate", w.Deleted, errors=(400, 404, 503)),
        Endpoint(("GET",), "/v1/triggers", api.list_triggers,
                 "List Triggers with their last run", w.DocumentList, errors=(409, 503)),
        Endpoint(("GET",), "/v1/triggers/{name}", api.get_trigger, "Get a Trigger",
                 w.Document, errors=(400, 404, 409, 503)),
        Endpoint(("PUT",), "/v1/triggers/{name}", api.put_trigger,
                 "Apply (create or update) a Trigger", w.TriggerApplied, trigger_doc,
                 created=True, errors=(400, 404, 409, 413, 503)),
        Endpoint(("DELETE",), "/v1/triggers/{name}", api.delete_trigger, "Delete a Trigger",
                 w.Deleted, errors=(400, 404, 409, 503)),
        Endpoint(("GET",), "/v1/triggers/{name}/history", api.trigger_history,
                 "A Trigger's runs, newest first", w.TriggerRunList, errors=(400, 404, 409, 503),
                 query=(limit,)),
        Endpoint(("GET",), "/v1/monitors", api.list_monitors,
                 "List Monitors with their status", w.DocumentList, errors=(409, 503)),
        Endpoint(("GET",), "/v1/monitors/{name}", api.get_monitor,
                 "Get a Monitor and its status", w.Document, errors=(400, 404, 409, 503)),
        Endpoint(("PUT",), "/v1/monitors/{name}", api.put_monitor,
                 "Apply (create or update) a Monitor", w.MonitorApplied, monitor_doc,
                 created=True, errors=(400, 404, 409, 413, 503)),
        Endpoint(("DELETE",), "/v1/monitors/{name}", api.delete_monitor,
                 "Delete a Monitor and its progress (its Alert artifacts stay)", w.Deleted,
                 errors=(400, 404, 409, 503)),
        Endpoint(("GET",), "/v1/monitors/{name}/windows", api.monitor_windows,
                 "A Monitor's stored windows, oldest first (limit: the newest N)",
                 w.WindowList, errors=(400, 404, 409, 503),
                 query=(("version", {"type": "string"}), limit)),
        Endpoint(("GET",), f"{dep}/revisions", api.revisions,
                 "Revisions with their pinned models", w.RevisionList, errors=(400, 404, 503)),
        Endpoint(("GET",), f"{dep}/replicas", api.deployment_replicas,
                 "Replicas of a deployment", w.ReplicaList, errors=(400, 404, 503)),
        Endpoint(("GET",), f"{dep}/events", api.events, "Recent events", w.EventList,
                 errors=(400, 404, 503), query=(limit,)),
        Endpoint(("GET",), "/v1/replicas", api.all_replicas, "Replicas of every deployment",
                 w.ReplicaList, errors=(503,)),
        Endpoint(("GET",), "/v1/replicas/{replica_id}/log", api.replica_log,
                 "The replica's log file (its last `tail` lines; at most 4 MiB)", None,
                 errors=(400, 404, 503), query=(("tail", limit[1]),)),
    ]  # fmt: skip
