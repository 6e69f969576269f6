"""The shared retry of whole transactions on transient database failures."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.exc import OperationalError

from loopline.metadata.sql.engine import RetriesExhausted, TransientConflict, retry_transient


def locked() -> OperationalError:
    return OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked"))


def test_a_locked_database_is_retried_until_the_transaction_goes_through() -> None:
    calls, sleeps = [], []

    def attempt() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise locked()
        return "done"

    assert retry_transient(attempt, sleep=sleeps.append) == "done"
    assert len(calls) == 3 and len(sleeps) == 2 and sleeps[0] < sleeps[1]


def test_a_transient_conflict_raised_by_the_caller_is_retried() -> None:
    calls: list[int] = []

    def attempt() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise TransientConflict
        return len(calls)

    assert retry_transient(attempt, sleep=lambda s: None) == 2


def test_other_failures_are_not_retried() -> None:
    calls: list[int] = []

    def attempt() -> None:
        calls.append(1)
        raise OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: x"))

    with pytest.raises(OperationalError, match="no such table"):
        retry_transient(attempt, sleep=lambda s: None)
    assert len(calls) == 1


def test_it_gives_up_after_the_deadline_with_the_last_failure_as_cause() -> None:
    def attempt() -> None:
        raise locked()

    with pytest.raises(RetriesExhausted, match="database is locked") as info:
        retry_transient(attempt, deadline_s=0.0, sleep=lambda s: None)
    assert isinstance(info.value.__cause__, OperationalError)
