"""Keyset paging: pages of 50 rows that start after the last key of the previous page.

Each list in the console is ordered by a unique key (a deployment's or model's name, a run's
id, a version number); ``after`` in the URL is the last key shown, so a deep link always opens
the same page. Runs, models and model versions are cut by the metadata store itself (its
``after=``/``limit=`` list queries: page N costs what page 1 costs); :func:`page_by_name` cuts
the short lists that come whole from elsewhere (deployments, monitors).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from loopline.errors import InvalidInputError, shown

PAGE_SIZE = 50

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of rows; ``next_after`` is the key to ask for the next page (None: last)."""

    items: tuple[T, ...]
    after: str | None
    next_after: str | None


def page_by_name(
    items: Iterable[T], key: Callable[[T], str], after: str | None, size: int = PAGE_SIZE
) -> Page[T]:
    """The rows whose ``key`` sorts after ``after``, ascending, at most ``size``."""
    ordered = sorted((i for i in items if after is None or key(i) > after), key=key)
    rows = tuple(ordered[:size])
    more = len(ordered) > size
    return Page(rows, after, key(rows[-1]) if more and rows else None)


def after_id(value: str | None) -> int | None:
    """The ``after`` query parameter of an id-ordered list.

    Raises:
        InvalidInputError: it is not a positive integer (the message names ``after``).
    """
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 18:
        raise InvalidInputError(
            f"after = {shown(value)} is invalid: it must be the id of the last row shown "
            "(a positive integer); open the list without it for the first page."
        )
    return int(value)


def after_name(value: str | None) -> str | None:
    """The ``after`` query parameter of a name-ordered list (at most 253 characters).

    Raises:
        InvalidInputError: it is too long to be a name (the message names ``after``).
    """
    if value is None or value == "":
        return None
    if len(value) > 253:
        raise InvalidInputError(
            f"after = {shown(value)} is invalid: it must be the name of the last row shown; "
            "open the list without it for the first page."
        )
    return value
