"""The metadata store contract. Every method is abstract; each docstring names what it raises.

Backends: ``loopline.metadata.sql.SqlMetadataStore`` (SQLite, PostgreSQL). The conformance
suite every backend must pass is ``loopline.testing.metadata.MetadataStoreContract``.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from datetime import datetime

from loopline.metadata.entities import (
    Artifact,
    ArtifactState,
    Context,
    Direction,
    Event,
    Execution,
    ExecutionState,
    LineageGraph,
    Metric,
    ModelAlias,
    ModelVersion,
)
from loopline.metadata.retention import Collection, CollectionResult, GcPlan, RetentionGraph
from loopline.metadata.steps import PlannedOutput, StepOutput, StepRecord, StepStart
from loopline.types import ArtifactId, ContextId, ExecutionId, Json


class MetadataStore(abc.ABC):
    """What happened: artifacts, executions, events, contexts, metrics and model versions.

    Each call is one transaction. Returned values are frozen entities, never live rows.
    Properties are JSON objects; ``update_*`` merges the given keys into them.
    """

    # ---- artifacts -------------------------------------------------------------------------

    @abc.abstractmethod
    def put_artifact(
        self,
        type_name: str,
        uri: str,
        *,
        name: str | None = None,
        digest: str | None = None,
        properties: Mapping[str, Json] | None = None,
        state: ArtifactState = ArtifactState.PENDING,
    ) -> Artifact:
        """Record a new artifact and return it with its id."""

    @abc.abstractmethod
    def update_artifact(
        self,
        artifact_id: ArtifactId,
        *,
        state: ArtifactState | None = None,
        digest: str | None = None,
        uri: str | None = None,
        properties: Mapping[str, Json] | None = None,
    ) -> Artifact:
        """Change an artifact's state, digest, uri, or merge properties. Raises NotFoundError."""

    @abc.abstractmethod
    def get_artifact(self, artifact_id: ArtifactId) -> Artifact:
        """Return one artifact. Raises NotFoundError naming the id."""

    @abc.abstractmethod
    def get_artifacts(self, artifact_ids: Sequence[ArtifactId]) -> list[Artifact]:
        """Return the artifacts with these ids, in the given order; missing ids are skipped."""

    @abc.abstractmethod
    def list_artifacts(
        self,
        *,
        type_name: str | None = None,
        state: ArtifactState | None = None,
        context_id: ContextId | None = None,
        limit: int | None = None,
        newest_first: bool = True,
        after: ArtifactId | None = None,
    ) -> list[Artifact]:
        """List artifacts, filtered by type, state and context (via attributions).

        ``after`` is a keyset cursor: only artifacts past that id in the listing's order
        (ids below it newest first, above it oldest first), so page N of ``limit`` rows costs
        what page 1 costs. Raises InvalidInputError for a bad ``limit`` or ``after``."""

    # ---- executions ------------------------------------------------------------------------

    @abc.abstractmethod
    def put_execution(
        self,
        type_name: str,
        *,
        name: str | None = None,
        state: ExecutionState = ExecutionState.NEW,
        cache_key: str | None = None,
        properties: Mapping[str, Json] | None = None,
        started_at: datetime | None = None,
        log_uri: str | None = None,
        inputs: Sequence[tuple[str, ArtifactId]] = (),
        outputs: Sequence[tuple[str, ArtifactId]] = (),
        contexts: Sequence[ContextId] = (),
    ) -> Execution:
        """Record a new execution and return it with its id, in one transaction.

        Like MLMD's ``put_execution``: ``inputs`` and ``outputs`` are ``(port, artifact_id)``
        pairs recorded as INPUT and OUTPUT events (index = position among the pairs of the
        same port); the execution is associated with every context in ``contexts`` and its
        outputs are attributed to them. Outputs are for executions recorded in a final state
        (e.g. CACHED, pointing at existing LIVE artifacts); a running execution publishes its
        outputs with :meth:`publish_execution`. Raises NotFoundError for an unknown artifact
        or context and InvalidInputError for outputs of a non-final state (recording nothing).
        """

    @abc.abstractmethod
    def update_execution(
        self,
        execution_id: ExecutionId,
        *,
        state: ExecutionState | None = None,
        cache_key: str | None = None,
        properties: Mapping[str, Json] | None = None,
        log_uri: str | None = None,
        started_at: datetime | None = None,
        ended_at: datetime | None = None,
    ) -> Execution:
        """Change an execution; properties are merged. Raises NotFoundError."""

    @abc.abstractmethod
    def get_execution(self, execution_id: ExecutionId) -> Execution:
        """Return one execution. Raises NotFoundError naming the id."""

    @abc.abstractmethod
    def list_executions(
        self,
        *,
        type_name: str | None = None,
        state: ExecutionState | None = None,
        context_id: ContextId | None = None,
        cache_key: str | None = None,
        limit: int | None = None,
        newest_first: bool = True,
        after: ExecutionId | None = None,
    ) -> list[Execution]:
        """List executions, filtered by type, state, context (via associations) and cache key.

        ``after`` is a keyset cursor, as in :meth:`list_artifacts`."""

    @abc.abstractmethod
    def publish_execution(
        self,
        execution_id: ExecutionId,
        *,
        state: ExecutionState,
        outputs: Sequence[Event] = (),
        properties: Mapping[str, Json] | None = None,
        ended_at: datetime | None = None,
        contexts: Sequence[ContextId] = (),
    ) -> Execution:
        """Finish an execution in one transaction.

        The output artifacts are also attributed to every context in ``contexts``.

        Records the output events, turns every output artifact of state PENDING into LIVE (only
        when ``state`` is COMPLETE), merges ``properties`` and sets the final state. Either all
        of it is visible or none. Raises NotFoundError for an unknown execution or artifact.
        """

    @abc.abstractmethod
    def find_cached_execution(self, cache_key: str) -> Execution | None:
        """Newest COMPLETE execution with this cache key whose outputs are all LIVE, or None."""

    # ---- a pipeline step, in two transactions (see loopline.metadata.steps) -----------------

    @abc.abstractmethod
    def start_step(
        self,
        type_name: str,
        *,
        name: str | None = None,
        cache_key: str | None = None,
        properties: Mapping[str, Json] | None = None,
        started_at: datetime | None = None,
        log_uri: str | None = None,
        inputs: Sequence[tuple[str, ArtifactId]] = (),
        contexts: Sequence[ContextId] = (),
        outputs: Sequence[PlannedOutput] = (),
    ) -> StepStart:
        """Record a RUNNING execution and its planned outputs in one transaction.

        Like :meth:`put_execution` with state RUNNING (``inputs`` become INPUT events, the
        execution is associated with ``contexts``), and every planned output is recorded as a
        PENDING artifact whose property ``producer_execution`` is the new execution's id.
        Raises NotFoundError for an unknown input artifact or context and InvalidInputError
        for a bad value (recording nothing).
        """

    @abc.abstractmethod
    def record_step(
        self,
        execution_id: ExecutionId,
        *,
        state: ExecutionState,
        outputs: Sequence[StepOutput] = (),
        discarded: Sequence[ArtifactId] = (),
        properties: Mapping[str, Json] | None = None,
        ended_at: datetime | None = None,
        contexts: Sequence[ContextId] = (),
    ) -> StepRecord:
        """Finish a step in one transaction: all of it is visible or none.

        Each output (a PENDING artifact) gets its digest and merged properties, an OUTPUT
        event (index = position among the outputs of the same port), turns LIVE and is
        attributed to every context in ``contexts``; ``outputs`` are only for ``state``
        COMPLETE. Each ``discarded`` artifact (PENDING; its bytes were removed) turns DELETED.
        The execution's properties are merged and it takes the final ``state``. Returns the
        final execution and the published outputs as stored (in the order of ``outputs``).

        Raises NotFoundError for an unknown execution, artifact or context, ConflictError if
        the execution is already final or an output is not PENDING, and InvalidInputError
        for a non-final state, outputs of a state other than COMPLETE, or a bad value.
        """

    # ---- events ----------------------------------------------------------------------------

    @abc.abstractmethod
    def put_events(self, events: Sequence[Event]) -> None:
        """Record edges. Raises NotFoundError if an artifact or execution does not exist."""

    @abc.abstractmethod
    def get_events(
        self,
        *,
        artifact_ids: Sequence[ArtifactId] = (),
        execution_ids: Sequence[ExecutionId] = (),
    ) -> list[Event]:
        """Events touching any of the given artifacts or executions, oldest first."""

    # ---- contexts --------------------------------------------------------------------------

    @abc.abstractmethod
    def put_context(
        self, type_name: str, name: str, *, properties: Mapping[str, Json] | None = None
    ) -> Context:
        """Create a context. Raises AlreadyExistsError if (type_name, name) exists."""

    @abc.abstractmethod
    def ensure_context(
        self, type_name: str, name: str, *, properties: Mapping[str, Json] | None = None
    ) -> Context:
        """Return the context (type_name, name), creating it if needed (safe under races)."""

    @abc.abstractmethod
    def get_context(self, context_id: ContextId) -> Context:
        """Return one context. Raises NotFoundError naming the id."""

    @abc.abstractmethod
    def find_context(self, type_name: str, name: str) -> Context | None:
        """Return the context (type_name, name) or None."""

    @abc.abstractmethod
    def update_context(self, context_id: ContextId, *, properties: Mapping[str, Json]) -> Context:
        """Merge properties into a context. Raises NotFoundError."""

    @abc.abstractmethod
    def list_contexts(
        self,
        *,
        type_name: str | None = None,
        limit: int | None = None,
        after: ContextId | None = None,
    ) -> list[Context]:
        """List contexts of a type, newest first; ``after``: only ids below it (a keyset
        cursor, as in :meth:`list_artifacts`)."""

    @abc.abstractmethod
    def count_executions(
        self, context_ids: Sequence[ContextId]
    ) -> dict[ContextId, dict[ExecutionState, int]]:
        """How many executions of each state are associated with each of these contexts, in
        one query (a runs list's steps and cache hits). A context with no executions (or
        unknown) is absent. Raises InvalidInputError for an id that is not an integer ≥ 1."""

    @abc.abstractmethod
    def attribute(self, context_id: ContextId, artifact_ids: Sequence[ArtifactId]) -> None:
        """Link artifacts to a context (idempotent). Raises NotFoundError for unknown ids."""

    @abc.abstractmethod
    def associate(self, context_id: ContextId, execution_ids: Sequence[ExecutionId]) -> None:
        """Link executions to a context (idempotent). Raises NotFoundError for unknown ids."""

    @abc.abstractmethod
    def contexts_of_execution(self, execution_id: ExecutionId) -> list[Context]:
        """Contexts an execution is associated with."""

    @abc.abstractmethod
    def contexts_of_artifact(self, artifact_id: ArtifactId) -> list[Context]:
        """Contexts an artifact is attributed to."""

    # ---- queries ---------------------------------------------------------------------------

    @abc.abstractmethod
    def lineage(
        self,
        *,
        artifact_id: ArtifactId | None = None,
        execution_id: ExecutionId | None = None,
        direction: Direction = Direction.UPSTREAM,
        hops: int = 5,
    ) -> LineageGraph:
        """Walk the event graph from one artifact or execution, at most ``hops`` edges.

        One hop is one artifact↔execution edge. Raises NotFoundError for an unknown start and
        InvalidInputError unless exactly one start is given and ``hops >= 0``.
        """

    @abc.abstractmethod
    def latest_artifact(
        self,
        type_name: str,
        *,
        context_id: ContextId | None = None,
        state: ArtifactState | None = ArtifactState.LIVE,
    ) -> Artifact | None:
        """Newest artifact (highest id) of a type, optionally within a context."""

    @abc.abstractmethod
    def latest_blessed_model(self, *, context_id: ContextId | None = None) -> Artifact | None:
        """TFX's LatestBlessedModelStrategy: the newest LIVE ``Model`` artifact for which a
        LIVE ``ModelBlessing`` artifact has properties ``blessed == 1`` and
        ``current_model_id == model.id``; optionally only models attributed to a context."""

    # ---- experiment tracking ---------------------------------------------------------------

    @abc.abstractmethod
    def log_metrics(
        self, execution_id: ExecutionId, metrics: Mapping[str, float], *, step: int = 0
    ) -> None:
        """Append metric values for an execution. Raises NotFoundError, InvalidInputError for
        a non-finite or non-numeric value."""

    @abc.abstractmethod
    def get_metrics(self, execution_id: ExecutionId) -> list[Metric]:
        """All logged metric values of an execution, ordered by key, step, time."""

    # ---- model registry rows ---------------------------------------------------------------

    @abc.abstractmethod
    def create_model_version(
        self, name: str, artifact_id: ArtifactId, *, description: str = ""
    ) -> ModelVersion:
        """Register an artifact as the next version (1, 2, …) of model ``name``, atomically
        even under concurrent callers. Raises NotFoundError for an unknown artifact."""

    @abc.abstractmethod
    def get_model_version(self, name: str, version: int) -> ModelVersion:
        """Raises NotFoundError naming the model, the version and the known versions."""

    @abc.abstractmethod
    def list_model_versions(
        self,
        name: str | None = None,
        *,
        newest_first: bool = False,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[ModelVersion]:
        """Versions of one model (or of all models), by name then version (descending with
        ``newest_first``). ``after`` is a keyset cursor on the version number of model
        ``name``: only versions past it in that order. Raises InvalidInputError for a bad
        ``limit`` or ``after``, or ``after`` without ``name``."""

    @abc.abstractmethod
    def list_model_names(self, *, after: str | None = None, limit: int | None = None) -> list[str]:
        """The names of registered models, ascending; ``after``: only names above it (a
        keyset cursor). Raises InvalidInputError for a bad ``limit``."""

    @abc.abstractmethod
    def set_model_alias(
        self,
        name: str,
        alias: str,
        version: int | None,
        *,
        execution_id: ExecutionId | None,
        expect: int | None = None,
    ) -> ModelAlias | None:
        """Point ``name@alias`` at ``version`` (None removes the alias). Returns the new alias
        or None. Raises NotFoundError if the version does not exist.

        With ``expect`` the move is a compare-and-set: it happens only if the alias points at
        version ``expect`` now (``0``: the alias is not set), checked and written in one
        transaction; otherwise ConflictError names the version it is at. ``None`` moves it
        whatever it points at."""

    @abc.abstractmethod
    def list_model_aliases(self, name: str | None = None) -> list[ModelAlias]:
        """Current aliases of one model (or all models), by name then alias."""

    # ---- retention (loopline gc; see loopline.metadata.retention) ---------------------------

    @abc.abstractmethod
    def retention_graph(self) -> RetentionGraph:
        """The runs, executions, artifacts, memberships and events that retention plans on,
        read in one transaction."""

    @abc.abstractmethod
    def begin_collection(self, plan: GcPlan, *, started_at: datetime) -> Collection:
        """Mark ``plan`` in one transaction: record it as a ``gc`` context, turn its artifacts
        DELETED and tag its runs. Raises ConflictError if an execution outside the plan uses
        one of its artifacts by now (plan again)."""

    @abc.abstractmethod
    def pending_collections(self) -> list[Collection]:
        """Collections marked but not finished (a crash cut them short), oldest first."""

    @abc.abstractmethod
    def finish_collection(self, collection_id: ContextId) -> CollectionResult:
        """Delete a marked collection's rows in one transaction (after its bytes are gone)
        and record it as done; idempotent. Rows referenced from outside the plan by now are
        kept (as DELETED artifacts)."""

    # ---- lifecycle -------------------------------------------------------------------------

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. The store must not be used afterwards."""
