"""Metric queries: append-only values per execution, key and step."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from loopline.errors import InvalidInputError
from loopline.metadata.entities import Metric
from loopline.metadata.sql import executions
from loopline.metadata.sql._values import check_metric, utcnow
from loopline.metadata.sql.schema import MetricRow


def to_metric(row: MetricRow) -> Metric:
    return Metric(
        execution_id=row.execution_id,
        key=row.key,
        value=row.value,
        step=row.step,
        timestamp=row.timestamp,
    )


def log(session: Session, execution_id: int, metrics: Mapping[str, float], *, step: int) -> None:
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise InvalidInputError(f"Metric step {step!r} is not valid; use an integer ≥ 0.")
    if not isinstance(metrics, Mapping):
        raise InvalidInputError(f"Metrics must be a mapping of name to number, not {metrics!r}.")
    values = [check_metric(key, value) for key, value in metrics.items()]
    executions.load(session, execution_id)
    now = utcnow()
    session.add_all(
        MetricRow(execution_id=execution_id, key=key, value=value, step=step, timestamp=now)
        for key, value in values
    )
    session.flush()


def get(session: Session, execution_id: int) -> list[Metric]:
    executions.load(session, execution_id)
    query = (
        select(MetricRow)
        .where(MetricRow.execution_id == execution_id)
        .order_by(MetricRow.key, MetricRow.step, MetricRow.timestamp, MetricRow.id)
    )
    return [to_metric(row) for row in session.scalars(query)]
