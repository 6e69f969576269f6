"""``SqlDeploymentStateStore``: deployment state in the metadata database (SQLite/PostgreSQL).

Three tables of its own (``deploy_deployments``, ``deploy_revisions``, ``deploy_replicas``);
entities are stored as JSON documents next to their keys, so adding a field never needs a
schema change. Every call is one transaction on the metadata store's engine (SQLite: WAL,
``BEGIN IMMEDIATE`` for writes).

Schema ownership: the tables are created by the metadata migration chain (Alembic revision
``0002``, ``loopline/metadata/sql/migrations/versions/0002_deployments.py``), applied when the
metadata store is opened; the ``Table`` objects here only map them (a test checks that the
two agree).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

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
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

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
from loopline.deploy.deployment import Deployment, RouterProcess
from loopline.deploy.replica import Replica
from loopline.deploy.revision import Revision
from loopline.deploy.spec import DeploymentSpec
from loopline.deploy.state import DeploymentStateStore
from loopline.deploy.status import DeploymentStatus
from loopline.errors import BackendError, ConfigurationError, NotFoundError

T = TypeVar("T")

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
    """The deployment state store on a SQLAlchemy engine (usually the metadata store's)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # In-memory SQLite has one shared connection: serialise calls on it.
        self._lock = threading.RLock()

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

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self._lock, self.engine.begin() as conn:
            yield conn

    def _run(self, fn: Callable[[Connection], T], what: str) -> T:
        try:
            with self._tx() as conn:
                return fn(conn)
        except SQLAlchemyError as exc:
            raise BackendError(f"Deployment store failed to {what}: {exc}") from exc

    @staticmethod
    def _row_to_deployment(row: Any) -> Deployment:
        return Deployment(
            spec=DeploymentSpec.from_dict(row.spec), generation=row.generation,
            created_at=row.created_at, status=status_from_json(row.status),
            router=router_from_json(row.router),
        )  # fmt: skip

    @staticmethod
    def _get(conn: Connection, name: str) -> Deployment:
        row = conn.execute(select(deployments).where(deployments.c.name == name)).first()
        if row is None:
            known = conn.execute(select(deployments.c.name).order_by(deployments.c.name))
            raise NotFoundError(
                f"Deployment {name!r} does not exist; known deployments: {[r[0] for r in known]}."
            )
        return SqlDeploymentStateStore._row_to_deployment(row)

    def apply_spec(self, spec: DeploymentSpec, now: float) -> Deployment:
        def fn(conn: Connection) -> Deployment:
            row = conn.execute(select(deployments).where(deployments.c.name == spec.name)).first()
            if row is None:
                d = Deployment(spec=spec, generation=1, created_at=now)
                conn.execute(insert(deployments).values(
                    name=spec.name, spec=spec.to_dict(), generation=1, created_at=now,
                    status=status_to_json(d.status), router=None))  # fmt: skip
                return d
            current = self._row_to_deployment(row)
            if current.spec == spec:
                return current
            conn.execute(update(deployments).where(deployments.c.name == spec.name).values(
                spec=spec.to_dict(), generation=current.generation + 1))  # fmt: skip
            return Deployment(spec, current.generation + 1, current.created_at, current.status,
                              current.router)  # fmt: skip

        return self._run(fn, f"apply deployment {spec.name!r}")

    def get_deployment(self, name: str) -> Deployment:
        return self._run(lambda conn: self._get(conn, name), f"read deployment {name!r}")

    def list_deployments(self) -> list[Deployment]:
        def fn(conn: Connection) -> list[Deployment]:
            rows = conn.execute(select(deployments).order_by(deployments.c.name))
            return [self._row_to_deployment(r) for r in rows]

        return self._run(fn, "list deployments")

    def delete_deployment(self, name: str) -> None:
        def fn(conn: Connection) -> None:
            self._get(conn, name)
            for table in (replicas, revisions):
                conn.execute(delete(table).where(table.c.deployment == name))
            conn.execute(delete(deployments).where(deployments.c.name == name))

        self._run(fn, f"delete deployment {name!r}")

    def _set(self, name: str, what: str, **values: Any) -> Deployment:
        def fn(conn: Connection) -> Deployment:
            self._get(conn, name)
            conn.execute(update(deployments).where(deployments.c.name == name).values(**values))
            return self._get(conn, name)

        return self._run(fn, f"update the {what} of deployment {name!r}")

    def set_status(self, name: str, status: DeploymentStatus) -> Deployment:
        return self._set(name, "status", status=status_to_json(status))

    def set_router(self, name: str, router: RouterProcess | None) -> Deployment:
        return self._set(name, "router", router=router_to_json(router))

    def list_revisions(self, name: str) -> list[Revision]:
        def fn(conn: Connection) -> list[Revision]:
            rows = conn.execute(select(revisions.c.data).where(revisions.c.deployment == name))
            return sorted((revision_from_json(r[0]) for r in rows),
                          key=lambda r: (r.number, r.created_at))  # fmt: skip

        return self._run(fn, f"list revisions of {name!r}")

    def put_revision(self, revision: Revision) -> None:
        def fn(conn: Connection) -> None:
            self._get(conn, revision.deployment)
            key = (revisions.c.deployment == revision.deployment) & (
                revisions.c.hash == revision.hash
            )
            conn.execute(delete(revisions).where(key))
            conn.execute(insert(revisions).values(
                deployment=revision.deployment, hash=revision.hash, number=revision.number,
                data=revision_to_json(revision)))  # fmt: skip

        self._run(fn, f"store revision {revision.name!r}")

    def delete_revision(self, name: str, hash: str) -> None:
        def fn(conn: Connection) -> None:
            key = (revisions.c.deployment == name) & (revisions.c.hash == hash)
            if conn.execute(delete(revisions).where(key)).rowcount == 0:
                raise NotFoundError(f"Deployment {name!r} has no revision with hash {hash!r}.")

        self._run(fn, f"delete revision {hash!r} of {name!r}")

    def list_replicas(self, name: str) -> list[Replica]:
        def fn(conn: Connection) -> list[Replica]:
            rows = conn.execute(
                select(replicas.c.data).where(replicas.c.deployment == name)
                .order_by(replicas.c.created_at, replicas.c.id)
            )  # fmt: skip
            return [replica_from_json(r[0]) for r in rows]

        return self._run(fn, f"list replicas of {name!r}")

    def put_replica(self, replica: Replica) -> None:
        def fn(conn: Connection) -> None:
            self._get(conn, replica.deployment)
            key = (replicas.c.deployment == replica.deployment) & (replicas.c.id == replica.id)
            conn.execute(delete(replicas).where(key))
            conn.execute(insert(replicas).values(
                deployment=replica.deployment, id=replica.id, created_at=replica.created_at,
                data=replica_to_json(replica)))  # fmt: skip

        self._run(fn, f"store replica {replica.id!r}")

    def delete_replica(self, name: str, replica_id: str) -> None:
        def fn(conn: Connection) -> None:
            key = (replicas.c.deployment == name) & (replicas.c.id == replica_id)
            if conn.execute(delete(replicas).where(key)).rowcount == 0:
                raise NotFoundError(f"Deployment {name!r} has no replica {replica_id!r}.")

        self._run(fn, f"delete replica {replica_id!r}")
