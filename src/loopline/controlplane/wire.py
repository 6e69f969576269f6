"""The control plane's wire types: every request and response body of its REST API.

One source for three things: the handlers' answers (the API's tests decode each real answer
with its declared type and encode it back to the same JSON), the OpenAPI document
(:mod:`loopline.controlplane.openapi` derives its schemas from these types) and the typed
client (:class:`~loopline.controlplane.client.ControlPlaneClient` returns them). Field names
are snake_case here and camelCase on the wire (:mod:`loopline.controlplane.wire_codec`).
Timestamps are RFC 3339 strings (:mod:`loopline.controlplane.timestamps`).

Documents a user writes (a Deployment's ``spec``, a Trigger, a Monitor, an AnalysisTemplate)
are carried as :data:`Doc`: their fields are described in ``docs/`` and checked by the
server's own parsers, which name the field at fault.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loopline.controlplane.wire_codec import OMIT_NONE, Doc, wire

# ---- shared ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """An error: what went wrong and what to do next (``error``), its kind (``reason``) and,
    when one field is at fault, its path (``field``)."""

    error: str
    reason: str = wire(
        schema={"enum": ["Invalid", "BadRequest", "NotFound", "AlreadyExists", "Conflict",
                         "Unauthorized", "Timeout", "BackendUnavailable", "MisdirectedRequest",
                         "RequestEntityTooLarge", "InternalError", "MethodNotAllowed"]},
    )  # fmt: skip
    field: str | None = wire(omit_none=True)


@dataclass(frozen=True, slots=True)
class Health:
    """``controllers``: whether this control plane runs the controllers of its database
    (``active``) or serves the API only while another holds the lease (``standby``);
    ``leader``: who holds it."""

    status: str
    version: str
    controllers: str = wire(schema={"enum": ["active", "standby"]})
    leader: str | None = wire(default=None)


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    """An object's name, the server's generation and creation time (ignored on apply)."""

    name: str
    generation: int
    creation_timestamp: str | None
    labels: dict[str, str] | None = field(default=None, metadata=OMIT_NONE)
    annotations: dict[str, str] | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True, slots=True)
class Deleted:
    """What a DELETE did."""

    outcome: str
    name: str


@dataclass(frozen=True, slots=True)
class Document:
    """An AnalysisTemplate, Trigger or Monitor as the server keeps it: the document as
    applied (``spec``: ``docs/analysis.md``, ``docs/triggers.md``, ``docs/monitoring.md``)
    with the server's ``metadata`` and, for Triggers and Monitors, ``status``."""

    api_version: str
    kind: str
    metadata: ObjectMeta
    spec: Doc
    status: Doc | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True, slots=True)
class DocumentList:
    items: tuple[Document, ...]


# ---- deployments -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Condition:
    """A Deployment condition (``Progressing``, ``Available``, ``ReplicaFailure``)."""

    type: str
    status: str
    reason: str
    message: str
    last_update_time: str | None
    last_transition_time: str | None


@dataclass(frozen=True, slots=True)
class ModelStatus:
    """``ref`` as the user wrote it (``taxi@champion``) and what it is pinned to
    (``pinned``: ``taxi/7``), with the pin's version, digest, artifact and change cause."""

    ref: str
    model: str | None = wire(omit_none=True)
    version: int | None = wire(omit_none=True)
    digest: str | None = wire(omit_none=True)
    artifact_id: int | None = wire(omit_none=True)
    cause: str | None = wire(omit_none=True)
    pinned: str = wire(default="", required=True)


@dataclass(frozen=True, slots=True)
class Router:
    """The deployment's stable endpoint (and a blue-green preview's)."""

    port: int
    url: str
    preview_url: str | None
    pid: int | None


@dataclass(frozen=True, slots=True)
class DeploymentStatus:
    """What the controller last observed (``apps/v1`` DeploymentStatus and Argo Rollouts'
    phase); ``traffic``, ``rollout`` and ``autoscaler`` as ``docs/progressive-delivery.md``
    and ``docs/autoscaling.md`` describe them."""

    observed_generation: int
    replicas: int
    updated_replicas: int
    ready_replicas: int
    available_replicas: int
    unavailable_replicas: int
    revision: int
    conditions: tuple[Condition, ...]
    traffic: Doc
    rollout: Doc | None
    autoscaler: Doc | None
    model: ModelStatus
    template_hash: str
    phase: str = wire(schema={"enum": ["Healthy", "Progressing", "Paused", "Degraded"]})
    router: Router | None = None


@dataclass(frozen=True, slots=True)
class Deployment:
    """A deployment as ``get deployment -o yaml`` shows it (``spec``: ``docs/deploy.md``)."""

    api_version: str
    kind: str
    metadata: ObjectMeta
    spec: Doc
    status: DeploymentStatus


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A stored deployment this version refuses, and why."""

    name: str
    error: str


@dataclass(frozen=True, slots=True)
class DeploymentList:
    items: tuple[Deployment, ...]
    unreadable: tuple[Unreadable, ...] | None = wire(omit_none=True)


@dataclass(frozen=True, slots=True)
class DeploymentApplied:
    """``outcome``: ``created``, ``configured`` or ``unchanged``."""

    outcome: str
    deployment: Deployment


@dataclass(frozen=True, slots=True)
class Undone:
    """``skipped``: the target revision is the current one already."""

    skipped: bool
    deployment: Deployment


@dataclass(frozen=True, slots=True)
class RolloutStatus:
    """``done``: rolled out; ``failed``: the progress deadline passed; else still waiting
    (``message`` as kubectl's ``rollout status``)."""

    done: bool
    failed: bool
    paused: bool
    message: str
    generation: int
    observed_generation: int
    revision: int


@dataclass(frozen=True, slots=True)
class Revision:
    """One revision with its pinned model (``ref``: the reference it was pinned from)."""

    number: int
    hash: str
    name: str
    model: str
    ref: str
    digest: str | None
    cause: str
    replicas: int
    history: tuple[int, ...]
    created_at: str | None
    current: bool


@dataclass(frozen=True, slots=True)
class RevisionList:
    items: tuple[Revision, ...]


@dataclass(frozen=True, slots=True)
class ExitInfo:
    """How a replica's last process ended (``code`` None: re-adopted or never started)."""

    at: str | None
    code: int | None
    message: str


@dataclass(frozen=True, slots=True)
class Replica:
    """One replica slot and its process."""

    id: str
    deployment: str
    revision: str
    revision_number: int | None
    model: str | None
    phase: str
    ready: bool
    port: int | None
    pid: int | None
    restarts: int
    created_at: str | None
    started_at: str | None
    ready_since: str | None
    last_exit: ExitInfo | None
    log_path: str | None


@dataclass(frozen=True, slots=True)
class ReplicaList:
    items: tuple[Replica, ...]


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a deployment (``type``: ``Normal`` or ``Warning``)."""

    at: str | None
    type: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class EventList:
    items: tuple[Event, ...]


# ---- AnalysisTemplates, Triggers, Monitors ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class TemplateApplied:
    outcome: str
    template: Document


@dataclass(frozen=True, slots=True)
class TriggerApplied:
    outcome: str
    trigger: Document


@dataclass(frozen=True, slots=True)
class MonitorApplied:
    outcome: str
    monitor: Document


@dataclass(frozen=True, slots=True)
class TriggerRun:
    """A run a trigger started: what caused it, its parameters, how it ended."""

    id: int
    trigger: str
    model: str
    key: str
    keys: tuple[str, ...]
    state: str
    params: Doc
    cause: Doc
    created_at: str | None
    updated_at: str | None
    ended_at: str | None
    execution_id: int | None
    message: str
    process: Doc
    detail: Doc


@dataclass(frozen=True, slots=True)
class TriggerRunList:
    items: tuple[TriggerRun, ...]


@dataclass(frozen=True, slots=True)
class WindowList:
    """``loopline.monitor.WindowResult`` documents: one closed window of one model version
    each (drift per feature, performance, violations; ``start_ts``/``end_ts`` RFC 3339)."""

    items: tuple[Doc, ...] = wire(
        schema={"type": "array", "items": {"$ref": "#/components/schemas/WindowResult"}}
    )


# ---- requests --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScaleRequest:
    replicas: int = wire(schema={"type": "integer", "minimum": 0, "maximum": 1000})


@dataclass(frozen=True, slots=True)
class ModelRequest:
    model: str = wire(schema={"type": "string", "examples": ["taxi@champion", "taxi/7"]})


@dataclass(frozen=True, slots=True)
class UndoRequest:
    """``toRevision``: the revision to go back to (0: the previous one)."""

    to_revision: int = wire(default=0, schema={"type": "integer", "minimum": 0})


@dataclass(frozen=True, slots=True)
class PromoteRequest:
    """``full``: every remaining step at once."""

    full: bool = False


@dataclass(frozen=True, slots=True)
class AutoscalingRequest:
    """The ``spec.autoscaling`` block (HPA v2 fields), or null to remove it."""

    autoscaling: Doc | None
