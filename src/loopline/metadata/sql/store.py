"""``SqlMetadataStore``: the metadata store on SQLite or PostgreSQL through SQLAlchemy 2.

Each public call runs in one session and one transaction (``BEGIN IMMEDIATE`` for writes on
SQLite) and returns frozen entities built before the session closes. Transient lock and
serialisation failures are retried with a bounded backoff; other database failures surface as
``BackendError``. Open one with ``loopline.metadata.open_store(url)``, which also migrates.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from loopline.errors import BackendError, ConflictError, InvalidInputError, LooplineError
from loopline.metadata.entities import (
    TERMINAL_STATES,
    Artifact,
    ArtifactState,
    Context,
    Direction,
    Event,
    EventType,
    Execution,
    ExecutionState,
    LineageGraph,
    Metric,
    ModelAlias,
    ModelVersion,
)
from loopline.metadata.retention import Collection, CollectionResult, GcPlan, RetentionGraph
from loopline.metadata.sql import (
    artifacts,
    contexts,
    executions,
    lineage,
    models,
    publish,
    retention,
    steps,
)
from loopline.metadata.sql import contexts as contexts_rows
from loopline.metadata.sql import events as event_rows
from loopline.metadata.sql import metrics as metric_rows
from loopline.metadata.sql.engine import (
    RETRY_DEADLINE_S,
    RetriesExhausted,
    TransientConflict,
    is_memory_sqlite,
    read_engine,
    retry_transient,
)
from loopline.metadata.steps import PlannedOutput, StepOutput, StepRecord, StepStart
from loopline.metadata.store import MetadataStore
from loopline.types import ArtifactId, ContextId, ExecutionId, Json

T = TypeVar("T")

def _is_version_collision(exc: IntegrityError) -> bool:
    message = str(exc.orig)
    return "uq_model_versions_name_version" in message or "model_versions.name" in message


class SqlMetadataStore(MetadataStore):
    """The metadata store over a SQLAlchemy engine made by ``sql.engine.create_engines``.

    Args:
        engine: the engine; its schema must already be at head (``open_store`` does that).

    Thread-safe. On in-memory SQLite (one shared connection) calls are serialised.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._read_engine = read_engine(engine)
        self._serial: contextlib.AbstractContextManager[object] = (
            threading.RLock() if is_memory_sqlite(engine.url) else contextlib.nullcontext()
        )
        self._closed = False

    @property
    def engine(self) -> Engine:
        """The engine (for migrations and tests); do not query tables through it."""
        return self._engine

    def __repr__(self) -> str:
        return f"SqlMetadataStore({self._engine.url.render_as_string(hide_password=True)!r})"

    # ---- transaction plumbing --------------------------------------------------------------

    @contextlib.contextmanager
    def _session(self, *, write: bool) -> Iterator[Session]:
        if self._closed:
            raise BackendError(
                f"{self!r} was closed; open a new store with loopline.metadata.open_store(url)."
            )
        with self._serial:
            engine = self._engine if write else self._read_engine
            with Session(engine, expire_on_commit=False, autoflush=False) as session:
                with session.begin():
                    yield session

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A write transaction on a plain Connection (for the Core-statement paths)."""
        if self._closed:
            raise BackendError(
                f"{self!r} was closed; open a new store with loopline.metadata.open_store(url)."
            )
        with self._serial, self._engine.begin() as conn:
            yield conn

    def _call(self, fn: Callable[[Session], T], *, write: bool, what: str) -> T:
        def attempt() -> T:
            with self._session(write=write) as session:
                try:
                    return fn(session)
                except IntegrityError as exc:
                    if _is_version_collision(exc):
                        raise TransientConflict from exc
                    raise

        return self._retrying(attempt, what)

    def _call_core(self, fn: Callable[[Connection], T], *, what: str) -> T:
        """``fn`` in one write transaction on a plain Connection (Core statements only: no
        ORM session is built), retried and translated like :meth:`_call`."""

        def attempt() -> T:
            with self._connection() as conn:
                return fn(conn)

        return self._retrying(attempt, what)

    def _retrying(self, attempt: Callable[[], T], what: str) -> T:
        try:
            return retry_transient(attempt)
        except LooplineError:
            raise
        except RetriesExhausted as exc:
            last = exc.__cause__
            detail = (last.__cause__ or last) if last is not None else exc
            raise BackendError(
                f"The metadata database failed to {what}: {detail}, still after retrying for "
                f"{RETRY_DEADLINE_S:.0f} s. Another process may hold a long write transaction; "
                "check it, then retry."
            ) from last
        except IntegrityError as exc:
            raise ConflictError(
                f"Could not {what}: it conflicts with data written concurrently "
                f"({exc.orig}). Re-read and retry."
            ) from exc
        except SQLAlchemyError as exc:
            raise BackendError(
                f"The metadata database failed to {what}: {exc}. Check the database and retry."
            ) from exc

    # ---- artifacts -------------------------------------------------------------------------

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
        return self._call(
            lambda s: artifacts.put(
                s, type_name, uri, name=name, digest=digest, properties=properties, state=state
            ),
            write=True,
            what="record an artifact",
        )

    def update_artifact(
        self,
        artifact_id: ArtifactId,
        *,
        state: ArtifactState | None = None,
        digest: str | None = None,
        uri: str | None = None,
        properties: Mapping[str, Json] | None = None,
    ) -> Artifact:
        return self._call(
            lambda s: artifacts.update(
                s, artifact_id, state=state, digest=digest, uri=uri, properties=properties
            ),
            write=True,
            what=f"update artifact {artifact_id}",
        )

    def get_artifact(self, artifact_id: ArtifactId) -> Artifact:
        return self._call(
            lambda s: artifacts.get(s, artifact_id), write=False, what="read an artifact"
        )

    def get_artifacts(self, artifact_ids: Sequence[ArtifactId]) -> list[Artifact]:
        return self._call(
            lambda s: artifacts.get_many(s, artifact_ids), write=False, what="read artifacts"
        )

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
        return self._call(
            lambda s: artifacts.list_(
                s,
                type_name=type_name,
                state=state,
                context_id=context_id,
                limit=limit,
                newest_first=newest_first,
                after=after,
            ),
            write=False,
            what="list artifacts",
        )

    # ---- executions ------------------------------------------------------------------------

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
        if outputs and state not in TERMINAL_STATES:
            raise InvalidInputError(
                f"put_execution got outputs for an execution in state {state.value!r}; record "
                "outputs with a final state, or publish them with publish_execution."
            )

        def put(s: Session) -> Execution:
            execution = executions.put(
                s,
                type_name,
                name=name,
                state=state,
                cache_key=cache_key,
                properties=properties,
                started_at=started_at,
            )
            if log_uri is not None:
                execution = executions.update(
                    s,
                    execution.id,
                    state=None,
                    cache_key=None,
                    properties=None,
                    log_uri=log_uri,
                    started_at=None,
                    ended_at=None,
                )
            events = [
                *_events(execution.id, EventType.INPUT, inputs),
                *_events(execution.id, EventType.OUTPUT, outputs),
            ]
            if events:
                event_rows.put_for_new_execution(s, events)
            contexts_rows.link(
                s,
                contexts,
                execution_ids=[execution.id],
                artifact_ids=sorted({a for _, a in outputs}),
            )
            return execution

        return self._call(put, write=True, what="record an execution")

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
        return self._call(
            lambda s: executions.update(
                s,
                execution_id,
                state=state,
                cache_key=cache_key,
                properties=properties,
                log_uri=log_uri,
                started_at=started_at,
                ended_at=ended_at,
            ),
            write=True,
            what=f"update execution {execution_id}",
        )

    def get_execution(self, execution_id: ExecutionId) -> Execution:
        return self._call(
            lambda s: executions.get(s, execution_id), write=False, what="read an execution"
        )

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
        return self._call(
            lambda s: executions.list_(
                s,
                type_name=type_name,
                state=state,
                context_id=context_id,
                cache_key=cache_key,
                limit=limit,
                newest_first=newest_first,
                after=after,
            ),
            write=False,
            what="list executions",
        )

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
        def publish_(s: Session) -> Execution:
            execution = publish.publish(
                s,
                execution_id,
                state=state,
                outputs=outputs,
                properties=properties,
                ended_at=ended_at,
            )
            contexts_rows.link(s, contexts, artifact_ids=sorted({e.artifact_id for e in outputs}))
            return execution

        return self._call(publish_, write=True, what=f"publish execution {execution_id}")

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
        return self._call_core(
            lambda c: steps.start(
                c,
                type_name,
                name=name,
                cache_key=cache_key,
                properties=properties,
                started_at=started_at,
                log_uri=log_uri,
                inputs=inputs,
                contexts=contexts,
                outputs=outputs,
            ),
            what="record a step's start",
        )

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
        return self._call_core(
            lambda c: steps.record(
                c,
                execution_id,
                state=state,
                outputs=outputs,
                discarded=discarded,
                properties=properties,
                ended_at=ended_at,
                contexts=contexts,
            ),
            what=f"record step execution {execution_id}",
        )

    def find_cached_execution(self, cache_key: str) -> Execution | None:
        return self._call(
            lambda s: executions.find_cached(s, cache_key),
            write=False,
            what="look up a cached execution",
        )

    # ---- events ----------------------------------------------------------------------------

    def put_events(self, events: Sequence[Event]) -> None:
        self._call(lambda s: event_rows.put(s, events), write=True, what="record events")

    def get_events(
        self,
        *,
        artifact_ids: Sequence[ArtifactId] = (),
        execution_ids: Sequence[ExecutionId] = (),
    ) -> list[Event]:
        return self._call(
            lambda s: event_rows.get(s, artifact_ids=artifact_ids, execution_ids=execution_ids),
            write=False,
            what="read events",
        )

    # ---- contexts --------------------------------------------------------------------------

    def put_context(
        self, type_name: str, name: str, *, properties: Mapping[str, Json] | None = None
    ) -> Context:
        return self._call(
            lambda s: contexts.put(s, type_name, name, properties=properties),
            write=True,
            what="record a context",
        )

    def ensure_context(
        self, type_name: str, name: str, *, properties: Mapping[str, Json] | None = None
    ) -> Context:
        return self._call(
            lambda s: contexts.ensure(s, type_name, name, properties=properties),
            write=True,
            what="ensure a context",
        )

    def get_context(self, context_id: ContextId) -> Context:
        return self._call(lambda s: contexts.get(s, context_id), write=False, what="read a context")

    def find_context(self, type_name: str, name: str) -> Context | None:
        return self._call(
            lambda s: contexts.find(s, type_name, name), write=False, what="find a context"
        )

    def update_context(self, context_id: ContextId, *, properties: Mapping[str, Json]) -> Context:
        return self._call(
            lambda s: contexts.update(s, context_id, properties=properties),
            write=True,
            what=f"update context {context_id}",
        )

    def list_contexts(
        self,
        *,
        type_name: str | None = None,
        limit: int | None = None,
        after: ContextId | None = None,
    ) -> list[Context]:
        return self._call(
            lambda s: contexts.list_(s, type_name=type_name, limit=limit, after=after),
            write=False,
            what="list contexts",
        )

    def count_executions(
        self, context_ids: Sequence[ContextId]
    ) -> dict[ContextId, dict[ExecutionState, int]]:
        return self._call(
            lambda s: contexts.count_executions(s, context_ids),
            write=False,
            what="count executions",
        )

    def attribute(self, context_id: ContextId, artifact_ids: Sequence[ArtifactId]) -> None:
        self._call(
            lambda s: contexts.attribute(s, context_id, artifact_ids),
            write=True,
            what="attribute artifacts to a context",
        )

    def associate(self, context_id: ContextId, execution_ids: Sequence[ExecutionId]) -> None:
        self._call(
            lambda s: contexts.associate(s, context_id, execution_ids),
            write=True,
            what="associate executions with a context",
        )

    def contexts_of_execution(self, execution_id: ExecutionId) -> list[Context]:
        return self._call(
            lambda s: contexts.of_execution(s, execution_id),
            write=False,
            what="list an execution's contexts",
        )

    def contexts_of_artifact(self, artifact_id: ArtifactId) -> list[Context]:
        return self._call(
            lambda s: contexts.of_artifact(s, artifact_id),
            write=False,
            what="list an artifact's contexts",
        )

    # ---- queries ---------------------------------------------------------------------------

    def lineage(
        self,
        *,
        artifact_id: ArtifactId | None = None,
        execution_id: ExecutionId | None = None,
        direction: Direction = Direction.UPSTREAM,
        hops: int = 5,
    ) -> LineageGraph:
        return self._call(
            lambda s: lineage.walk(
                s,
                artifact_id=artifact_id,
                execution_id=execution_id,
                direction=direction,
                hops=hops,
            ),
            write=False,
            what="walk lineage",
        )

    def latest_artifact(
        self,
        type_name: str,
        *,
        context_id: ContextId | None = None,
        state: ArtifactState | None = ArtifactState.LIVE,
    ) -> Artifact | None:
        return self._call(
            lambda s: artifacts.latest(s, type_name, context_id=context_id, state=state),
            write=False,
            what="find the latest artifact",
        )

    def latest_blessed_model(self, *, context_id: ContextId | None = None) -> Artifact | None:
        return self._call(
            lambda s: models.latest_blessed(s, context_id=context_id),
            write=False,
            what="find the latest blessed model",
        )

    # ---- experiment tracking ---------------------------------------------------------------

    def log_metrics(
        self, execution_id: ExecutionId, metrics: Mapping[str, float], *, step: int = 0
    ) -> None:
        self._call(
            lambda s: metric_rows.log(s, execution_id, metrics, step=step),
            write=True,
            what="log metrics",
        )

    def get_metrics(self, execution_id: ExecutionId) -> list[Metric]:
        return self._call(
            lambda s: metric_rows.get(s, execution_id), write=False, what="read metrics"
        )

    # ---- model registry rows ---------------------------------------------------------------

    def create_model_version(
        self, name: str, artifact_id: ArtifactId, *, description: str = ""
    ) -> ModelVersion:
        return self._call(
            lambda s: models.create_version(s, name, artifact_id, description=description),
            write=True,
            what=f"create a version of model {name!r}",
        )

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        return self._call(
            lambda s: models.get_version(s, name, version),
            write=False,
            what="read a model version",
        )

    def list_model_versions(
        self,
        name: str | None = None,
        *,
        newest_first: bool = False,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[ModelVersion]:
        return self._call(
            lambda s: models.list_versions(
                s, name, newest_first=newest_first, after=after, limit=limit
            ),
            write=False,
            what="list model versions",
        )

    def list_model_names(self, *, after: str | None = None, limit: int | None = None) -> list[str]:
        return self._call(
            lambda s: models.list_names(s, after=after, limit=limit),
            write=False,
            what="list model names",
        )

    def set_model_alias(
        self,
        name: str,
        alias: str,
        version: int | None,
        *,
        execution_id: ExecutionId | None,
        expect: int | None = None,
    ) -> ModelAlias | None:
        return self._call(
            lambda s: models.set_alias(
                s, name, alias, version, execution_id=execution_id, expect=expect
            ),
            write=True,
            what=f"set alias {name}@{alias}",
        )

    def list_model_aliases(self, name: str | None = None) -> list[ModelAlias]:
        return self._call(
            lambda s: models.list_aliases(s, name), write=False, what="list model aliases"
        )

    # ---- retention -------------------------------------------------------------------------

    def retention_graph(self) -> RetentionGraph:
        return self._call(retention.load_graph, write=False, what="read the retention graph")

    def begin_collection(self, plan: GcPlan, *, started_at: datetime) -> Collection:
        return self._call(
            lambda s: retention.begin(s, plan, started_at=started_at),
            write=True,
            what="mark a gc collection",
        )

    def pending_collections(self) -> list[Collection]:
        return self._call(retention.pending, write=False, what="list pending gc collections")

    def finish_collection(self, collection_id: ContextId) -> CollectionResult:
        return self._call(
            lambda s: retention.finish(s, collection_id),
            write=True,
            what=f"finish gc collection {collection_id}",
        )

    # ---- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        self._closed = True
        self._engine.dispose()


def _events(
    execution_id: ExecutionId, kind: EventType, pairs: Sequence[tuple[str, ArtifactId]]
) -> list[Event]:
    """Events for ``(port, artifact_id)`` pairs; the index counts within each port."""
    seen: dict[str, int] = {}
    events = []
    for port, artifact_id in pairs:
        index = seen.get(port, 0)
        seen[port] = index + 1
        events.append(Event(artifact_id, execution_id, kind, port, index))
    return events
