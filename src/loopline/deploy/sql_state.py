"""``SqlDeploymentStateStore``: deployment state in the metadata database (SQLite/PostgreSQL).

Three tables of its own (``deploy_deployments``, ``deploy_revisions``, ``deploy_replicas``);
entities are stored as JSON documents next to their keys, so adding a field never needs a
schema change.

Transactions use the metadata store's engine set-up and its helpers
(``loopline.metadata.sql.engine``): reads run on :func:`read_engine` (SQLite: a deferred
``BEGIN``, so a read never takes the write lock and never waits for a writer in WAL mode),
writes on the write engine (``BEGIN IMMEDIATE``), and every transaction goes through
:func:`retry_transient` ("database is locked"/busy, serialisation failures). The sync loop's
tick costs one read transaction (:meth:`snapshot_all`: three ``SELECT``\\ s) and, only when
something changed, one write transaction per deployment (:meth:`commit`).

Schema ownership: the tables are created by the metadata migration chain (Alembic revision
``0002``, ``loopline/metadata/sql/migrations/versions/0002_deployments.py``), applied when the
metadata store is opened; the ``Table`` objects here only map them (a test checks that the
two agree).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy import cast as sql_cast

from loopline.deploy.codec import (
    replica_from_json,
    replica_to_json,
    revision_from_json,
    revision_to_json,
    router_from_json,
    router_to_json,
    status_from_json,
    status_to_json,
)
from loopline.deploy.deployment import Deployment
from loopline.deploy.replica import Replica
from loopline.deploy.revision import Revision
from loopline.deploy.snapshot import DeploymentSnapshot, check_writes
from loopline.deploy.spec import DeploymentSpec
from loopline.deploy.state import DeploymentStateStore
from loopline.deploy.writes import (
    DropReplica,
    DropRevision,
    PutReplica,
    PutRevision,
    SetRouter,
    SetStatus,
    Write,
)
from loopline.errors import ConfigurationError, ConflictError, NotFoundError
from loopline.metadata.sql.engine import is_memory_sqlite, read_engine, transact

T = TypeVar("T")
log = logging.getLogger(__name__)

# What decoding a stored document raises when this version refuses it (a spec rule added
# since it was written, such as no NaN) or it lacks a key.
_UNREADABLE = (ValueError, KeyError, TypeError)

schema = MetaData()
deployments = Table(
    "deploy_deployments", schema,
    Column("name", String(128), primary_key=True),
    Column("spec", JSON, nullable=False),
    Column("generation", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("status", JSON, nullable=False),
    Column("router", JSON, nullable=True),
)  # fmt: skip
revisions = Table(
    "deploy_revisions", schema,
    Column("deployment", String(128), primary_key=True),
    Column("hash", String(32), primary_key=True),
    Column("number", Integer, nullable=False),
    Column("data", JSON, nullable=False),
)  # fmt: skip
replicas = Table(
    "deploy_replicas", schema,
    Column("deployment", String(128), primary_key=True),
    Column("id", String(200), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("data", JSON, nullable=False),
)  # fmt: skip


class SqlDeploymentStateStore(DeploymentStateStore):
    """The deployment state store on a SQLAlchemy engine made by the metadata store's
    ``create_engines`` (usually the metadata store's own: :meth:`from_metadata`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.read_engine = read_engine(engine)
        # In-memory SQLite has one shared connection: serialise transactions on it.
        self._serial: contextlib.AbstractContextManager[object] = (
            threading.RLock() if is_memory_sqlite(engine.url) else contextlib.nullcontext()
        )
        self._decoded = _Decoded()
        self._unreadable: dict[str, str] = {}

    @classmethod
    def from_metadata(cls, metadata: object) -> SqlDeploymentStateStore:
        """Use the database of a ``SqlMetadataStore``.

        Raises:
            ConfigurationError: ``metadata`` is not SQL-backed.
        """
        engine = getattr(metadata, "engine", None)
        if not isinstance(engine, Engine):
            raise ConfigurationError(
                f"Deployment state needs a SQL metadata store, got {type(metadata).__name__}; "
                "set LOOPLINE_DB_URL to a sqlite:// or postgresql:// URL."
            )
        return cls(engine)

    # ---- transactions ----------------------------------------------------------------------

    def _tx(self, fn: Callable[[Connection], T], *, write: bool, what: str) -> T:
        engine = self.engine if write else self.read_engine
        failed = f"Deployment store failed to {what}"
        return transact(engine, fn, lock=self._serial, failed=failed)

    def _read(self, fn: Callable[[Connection], T], what: str) -> T:
        return self._tx(fn, write=False, what=what)

    def _write(self, fn: Callable[[Connection], T], what: str) -> T:
        return self._tx(fn, write=True, what=what)

    # ---- rows ------------------------------------------------------------------------------

    def _deployment(self, row: Any) -> Deployment:
        """A row of :data:`_DEPLOYMENT` (JSON columns as stored text)."""
        d = self._decoded
        n = row.name

        def build() -> Deployment:
            return Deployment(
                spec=d.get(("spec", n), row.spec, DeploymentSpec.from_dict),
                generation=row.generation, created_at=row.created_at,
                status=d.get(("status", n), row.status, status_from_json),
                router=d.get(("router", n), row.router, router_from_json),
            )  # fmt: skip

        return d.memo(("dep", n), tuple(row), build)

    def _readable(self, row: Any) -> Deployment | None:
        """The row's deployment, or None when this version refuses what is stored (noted in
        :meth:`unreadable`, logged once per stored text)."""
        try:
            d = self._deployment(row)
        except _UNREADABLE as exc:
            why = str(exc)
            if self._unreadable.get(row.name) != why:
                log.error("Deployment %r is stored in a form this version refuses: %s",
                          row.name, why)  # fmt: skip
            self._unreadable[row.name] = why
            return None
        self._unreadable.pop(row.name, None)
        return d

    def _get(self, conn: Connection, name: str) -> Deployment:
        row = conn.execute(_DEPLOYMENT.where(deployments.c.name == name)).first()
        if row is None:
            raise self._not_found(conn, name)
        d = self._readable(row)
        if d is None:
            raise ConflictError(
                f"Deployment {name!r} is stored in a form this version refuses "
                f"({self._unreadable[name]}); apply a corrected spec over it "
                "(loopline apply -f FILE), then delete it if it is not wanted."
            )
        return d

    def unreadable(self) -> dict[str, str]:
        return dict(self._unreadable)

    @staticmethod
    def _not_found(conn: Connection, name: str) -> NotFoundError:
        known = conn.execute(select(deployments.c.name).order_by(deployments.c.name))
        return NotFoundError(
            f"Deployment {name!r} does not exist; known deployments: {[r[0] for r in known]}."
        )

    def _snapshots(self, conn: Connection, name: str | None) -> list[DeploymentSnapshot]:
        dq, vq, pq = _DEPLOYMENT, _REVISION, _REPLICA
        if name is not None:
            dq = dq.where(deployments.c.name == name)
            vq = vq.where(revisions.c.deployment == name)
            pq = pq.where(replicas.c.deployment == name)
        rows = conn.execute(dq.order_by(deployments.c.name)).all()
        decoded = self._decoded
        revs: dict[str, list[Revision]] = {}
        for dep, key, raw in conn.execute(vq):
            try:
                rev = decoded.get(("rev", dep, key), raw, revision_from_json)
            except _UNREADABLE as exc:
                # Left out: the controller writes the revision of the spec's template again.
                log.warning("Revision %s of deployment %r is left out: %s", key, dep, exc)
                continue
            revs.setdefault(dep, []).append(rev)
        reps: dict[str, list[Replica]] = {}
        for dep, key, raw in conn.execute(pq):
            reps.setdefault(dep, []).append(decoded.get(("rep", dep, key), raw, replica_from_json))
        if name is None:  # a full read: what it did not see is gone
            decoded.keep_only(rows, revs, reps)
            self._unreadable = {k: v for k, v in self._unreadable.items()
                                if k in {r.name for r in rows}}  # fmt: skip
        out = []
        for row in rows:
            d = self._readable(row)
            if d is not None:
                out.append(DeploymentSnapshot.of(d, revs.get(row.name, ()), reps.get(row.name, ())))
        return out

    # ---- the store -------------------------------------------------------------------------

    def apply_spec(self, spec: DeploymentSpec, now: float) -> Deployment:
        def fn(conn: Connection) -> Deployment:
            row = conn.execute(_DEPLOYMENT.where(deployments.c.name == spec.name)).first()
            if row is None:
                d = Deployment(spec=spec, generation=1, created_at=now)
                conn.execute(insert(deployments).values(
                    name=spec.name, spec=spec.to_dict(), generation=1, created_at=now,
                    status=status_to_json(d.status), router=None))  # fmt: skip
                return d
            current = self._readable(row)
            if current is None:  # a corrected spec replaces one this version refuses
                generation = row.generation + 1
                conn.execute(update(deployments).where(deployments.c.name == spec.name).values(
                    spec=spec.to_dict(), generation=generation))  # fmt: skip
                self._unreadable.pop(spec.name, None)
                return Deployment(spec, generation, row.created_at)
            if current.spec == spec:
                return current
            conn.execute(update(deployments).where(deployments.c.name == spec.name).values(
                spec=spec.to_dict(), generation=current.generation + 1))  # fmt: skip
            return Deployment(spec, current.generation + 1, current.created_at, current.status,
                              current.router)  # fmt: skip

        return self._write(fn, f"apply deployment {spec.name!r}")

    def get_deployment(self, name: str) -> Deployment:
        return self._read(lambda conn: self._get(conn, name), f"read deployment {name!r}")

    def list_deployments(self) -> list[Deployment]:
        def fn(conn: Connection) -> list[Deployment]:
            rows = conn.execute(_DEPLOYMENT.order_by(deployments.c.name)).all()
            self._unreadable = {k: v for k, v in self._unreadable.items()
                                if k in {r.name for r in rows}}  # fmt: skip
            return [d for d in map(self._readable, rows) if d is not None]

        return self._read(fn, "list deployments")

    def delete_deployment(self, name: str) -> None:
        def fn(conn: Connection) -> None:
            found = conn.execute(select(deployments.c.name).where(deployments.c.name == name))
            if found.first() is None:
                raise self._not_found(conn, name)
            self._unreadable.pop(name, None)
            for table in (replicas, revisions):
                conn.execute(delete(table).where(table.c.deployment == name))
            conn.execute(delete(deployments).where(deployments.c.name == name))

        self._write(fn, f"delete deployment {name!r}")

    def snapshot(self, name: str) -> DeploymentSnapshot:
        def fn(conn: Connection) -> DeploymentSnapshot:
            found = self._snapshots(conn, name)
            if not found:
                raise self._not_found(conn, name)
            return found[0]

        return self._read(fn, f"read deployment {name!r}")

    def snapshot_all(self) -> list[DeploymentSnapshot]:
        return self._read(lambda conn: self._snapshots(conn, None), "read every deployment")

    def commit(self, name: str, writes: Sequence[Write]) -> None:
        check_writes(name, writes)
        if not writes:
            return

        def fn(conn: Connection) -> None:
            found = conn.execute(select(deployments.c.name).where(deployments.c.name == name))
            if found.first() is None:
                raise self._not_found(conn, name)
            for w in writes:
                _execute(conn, name, w)

        self._write(fn, f"update deployment {name!r}")


# JSON columns are read as their stored text, which :class:`_Decoded` compares with what it
# decoded last time.
_DEPLOYMENT = select(
    deployments.c.name, deployments.c.generation, deployments.c.created_at,
    sql_cast(deployments.c.spec, Text).label("spec"),
    sql_cast(deployments.c.status, Text).label("status"),
    sql_cast(deployments.c.router, Text).label("router"),
)  # fmt: skip
_REVISION = select(revisions.c.deployment, revisions.c.hash, sql_cast(revisions.c.data, Text))
_REPLICA = select(replicas.c.deployment, replicas.c.id, sql_cast(replicas.c.data, Text))


class _Decoded:
    """Entities decoded from stored JSON text, reused while the text is unchanged.

    The loop reads every row every tick; comparing a row's text with the text it was last
    decoded from costs far less than ``json.loads`` plus building (and, for a spec,
    validating) the entity. Entities are frozen, so sharing them is safe.
    """

    def __init__(self) -> None:
        self._cache: dict[tuple[str, ...], tuple[object, Any]] = {}

    def get(self, key: tuple[str, ...], raw: str | None, decode: Callable[[Any], T]) -> T:
        """The entity decoded from ``raw``, a JSON text (or NULL)."""
        return self.memo(key, raw, lambda: decode(None if raw is None else json.loads(raw)))

    def memo(self, key: tuple[str, ...], source: object, build: Callable[[], T]) -> T:
        """What ``build`` made from ``source`` (texts, numbers), rebuilt when it changed. An
        unchanged row gives the very same object, which lets the loop see it is unchanged."""
        hit = self._cache.get(key)
        if hit is not None and hit[0] == source:
            return cast(T, hit[1])
        value = build()
        self._cache[key] = (source, value)
        return value

    def keep_only(
        self, rows: Sequence[Any], revs: dict[str, list[Revision]], reps: dict[str, list[Replica]]
    ) -> None:
        """Forget every entry but those of a full read's rows."""
        seen: set[tuple[str, ...]] = {
            (kind, r.name) for r in rows for kind in ("dep", "spec", "status", "router")
        }
        seen.update(("rev", d, r.hash) for d, rs in revs.items() for r in rs)
        seen.update(("rep", d, r.id) for d, rs in reps.items() for r in rs)
        if len(seen) != len(self._cache):
            self._cache = {k: v for k, v in self._cache.items() if k in seen}


def _execute(conn: Connection, name: str, w: Write) -> None:
    """One write of a batch, inside the batch's transaction."""
    match w:
        case PutRevision(revision=rev):
            _replace(conn, revisions, [revisions.c.hash == rev.hash], name, hash=rev.hash,
                     number=rev.number, data=revision_to_json(rev))  # fmt: skip
        case DropRevision(hash=h):
            if _delete(conn, revisions, [revisions.c.hash == h], name) == 0:
                raise NotFoundError(f"Deployment {name!r} has no revision with hash {h!r}.")
        case PutReplica(replica=rep):
            _replace(conn, replicas, [replicas.c.id == rep.id], name, id=rep.id,
                     created_at=rep.created_at, data=replica_to_json(rep))  # fmt: skip
        case DropReplica(replica_id=rid):
            if _delete(conn, replicas, [replicas.c.id == rid], name) == 0:
                raise NotFoundError(f"Deployment {name!r} has no replica {rid!r}.")
        case SetStatus(status=status):
            conn.execute(update(deployments).where(deployments.c.name == name)
                         .values(status=status_to_json(status)))  # fmt: skip
        case SetRouter(router=router):
            conn.execute(update(deployments).where(deployments.c.name == name)
                         .values(router=router_to_json(router)))  # fmt: skip


def _delete(conn: Connection, table: Table, key: Iterable[Any], name: str) -> int:
    return conn.execute(delete(table).where(table.c.deployment == name, *key)).rowcount


def _replace(conn: Connection, table: Table, key: Iterable[Any], name: str, **row: Any) -> None:
    _delete(conn, table, key, name)
    conn.execute(insert(table).values(deployment=name, **row))
