"""Where ``kind: AnalysisTemplate`` objects live: applied with ``apply -f``, read by rollouts.

:class:`InMemoryAnalysisTemplateStore` for tests and embedded use;
:class:`SqlAnalysisTemplateStore` keeps them in the metadata database (table
``deploy_analysis_templates``, created by the metadata migration ``0003``). Both pass
``tests/deploy/test_template_store.py``.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable
from dataclasses import dataclass
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

from loopline.deploy.analysis.template import AnalysisTemplate
from loopline.errors import NotFoundError
from loopline.metadata.sql.engine import read_engine, transact

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StoredTemplate:
    """A template with its generation (bumped on every change) and creation time."""

    template: AnalysisTemplate
    generation: int
    created_at: float


class AnalysisTemplateStore(abc.ABC):
    """AnalysisTemplates by name. Each call is atomic."""

    @abc.abstractmethod
    def apply(self, template: AnalysisTemplate, now: float) -> tuple[StoredTemplate, str]:
        """Create or replace; returns the stored template and ``created``, ``configured`` or
        ``unchanged``."""

    @abc.abstractmethod
    def get(self, name: str) -> StoredTemplate:
        """The template. Raises NotFoundError naming the known ones."""

    @abc.abstractmethod
    def list(self) -> list[StoredTemplate]:
        """Every template, by name."""

    @abc.abstractmethod
    def delete(self, name: str) -> None:
        """Forget the template. Raises NotFoundError."""

    def find(self, names: set[str]) -> dict[str, AnalysisTemplate]:
        """The templates of those names that exist (missing ones are left out)."""
        return {t.template.name: t.template for t in self.list() if t.template.name in names}


def _missing(name: str, known: list[str]) -> NotFoundError:
    return NotFoundError(
        f"AnalysisTemplate {name!r} does not exist; known templates: {known}. Apply it with "
        "loopline apply -f FILE."
    )


class InMemoryAnalysisTemplateStore(AnalysisTemplateStore):
    """A thread-safe dict (state dies with the process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, StoredTemplate] = {}

    def apply(self, template: AnalysisTemplate, now: float) -> tuple[StoredTemplate, str]:
        with self._lock:
            current = self._items.get(template.name)
            if current is None:
                stored, outcome = StoredTemplate(template, 1, now), "created"
            elif current.template == template:
                return current, "unchanged"
            else:
                stored = StoredTemplate(template, current.generation + 1, current.created_at)
                outcome = "configured"
            self._items[template.name] = stored
            return stored, outcome

    def get(self, name: str) -> StoredTemplate:
        with self._lock:
            if name not in self._items:
                raise _missing(name, sorted(self._items))
            return self._items[name]

    def list(self) -> list[StoredTemplate]:
        with self._lock:
            return [self._items[k] for k in sorted(self._items)]

    def delete(self, name: str) -> None:
        with self._lock:
            if name not in self._items:
                raise _missing(name, sorted(self._items))
            del self._items[name]


schema = MetaData()
templates = Table(
    "deploy_analysis_templates", schema,
    Column("name", String(128), primary_key=True),
    Column("spec", JSON, nullable=False),
    Column("generation", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
)  # fmt: skip


class SqlAnalysisTemplateStore(AnalysisTemplateStore):
    """Templates in the metadata database, on its SQLAlchemy engine (reads on a deferred
    transaction, writes ``BEGIN IMMEDIATE`` on SQLite; transient failures retried with the
    metadata store's helper)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.read_engine = read_engine(engine)
        self._serial = threading.RLock()  # in-memory SQLite has one shared connection

    def _tx(self, fn: Callable[[Connection], T], *, write: bool, what: str) -> T:
        engine = self.engine if write else self.read_engine
        return transact(engine, fn, lock=self._serial, failed=f"Could not {what}")

    @staticmethod
    def _row(row: Any) -> StoredTemplate:
        return StoredTemplate(AnalysisTemplate.from_dict(row.spec), row.generation, row.created_at)

    @staticmethod
    def _known(conn: Connection) -> list[str]:
        return [r[0] for r in conn.execute(select(templates.c.name).order_by(templates.c.name))]

    def apply(self, template: AnalysisTemplate, now: float) -> tuple[StoredTemplate, str]:
        def fn(conn: Connection) -> tuple[StoredTemplate, str]:
            found = conn.execute(select(templates).where(templates.c.name == template.name))
            row = found.first()
            if row is None:
                conn.execute(insert(templates).values(
                    name=template.name, spec=template.to_dict(), generation=1,
                    created_at=now))  # fmt: skip
                return StoredTemplate(template, 1, now), "created"
            current = self._row(row)
            if current.template == template:
                return current, "unchanged"
            generation = current.generation + 1
            conn.execute(update(templates).where(templates.c.name == template.name).values(
                spec=template.to_dict(), generation=generation))  # fmt: skip
            return StoredTemplate(template, generation, current.created_at), "configured"

        return self._tx(fn, write=True, what=f"store AnalysisTemplate {template.name!r}")

    def get(self, name: str) -> StoredTemplate:
        def fn(conn: Connection) -> StoredTemplate:
            row = conn.execute(select(templates).where(templates.c.name == name)).first()
            if row is None:
                raise _missing(name, self._known(conn))
            return self._row(row)

        return self._tx(fn, write=False, what=f"read AnalysisTemplate {name!r}")

    def list(self) -> list[StoredTemplate]:
        def fn(conn: Connection) -> list[StoredTemplate]:
            return [self._row(r) for r in conn.execute(select(templates).order_by(
                templates.c.name))]  # fmt: skip

        return self._tx(fn, write=False, what="list AnalysisTemplates")

    def delete(self, name: str) -> None:
        def fn(conn: Connection) -> None:
            if conn.execute(delete(templates).where(templates.c.name == name)).rowcount == 0:
                raise _missing(name, self._known(conn))

        self._tx(fn, write=True, what=f"delete AnalysisTemplate {name!r}")
