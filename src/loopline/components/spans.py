"""Span and version discovery from a file pattern (TFX ExampleGen's input semantics).

A pattern is a path relative to the input directory, with glob wildcards (``*``, ``?``, which
never cross ``/``) and placeholders:

* ``{SPAN}`` (or ``{SPAN:N}`` for exactly N digits) — the span number;
* ``{VERSION}`` (or ``{VERSION:N}``) — the version of a span; the highest version wins;
* ``{YYYY}``, ``{MM}``, ``{DD}`` — a date; the span is the number of days since 1970-01-01,
  as in TFX. A pattern uses either ``{SPAN}`` or the date, not both;
* no span placeholder: every matching file belongs to span 0.

``select_spans`` picks the latest span by default, one span, an inclusive range, or the last N
spans (``start = max(first, latest − N + 1)``, as TFX's rolling range).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from loopline.errors import InvalidInputError, NotFoundError

_PLACEHOLDER = re.compile(r"\{(SPAN|VERSION|YYYY|MM|DD)(?::(\d+))?\}")
_EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class SpanFiles:
    """The files of one span at its chosen version (sorted relative paths)."""

    span: int
    version: int | None
    files: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SpanPattern:
    """A compiled input pattern; build with :meth:`parse`."""

    text: str
    regex: re.Pattern[str]
    has_span: bool
    has_version: bool
    has_date: bool

    @classmethod
    def parse(cls, pattern: str) -> SpanPattern:
        """Compile ``pattern``.

        Raises:
            InvalidInputError: an absolute or ``..`` path, an unknown or repeated placeholder,
                a date that lacks one of YYYY/MM/DD, or a date mixed with ``{SPAN}``.
        """
        if not pattern or os.path.isabs(pattern) or ".." in Path(pattern).parts:
            raise InvalidInputError(
                f"Input pattern {pattern!r} must be a relative path inside the input "
                "directory, e.g. 'span-{SPAN}/*.csv'."
            )
        unknown = [m for m in re.findall(r"\{([^}]*)\}", pattern) if not _known(m)]
        if unknown:
            raise InvalidInputError(
                f"Input pattern {pattern!r} has unknown placeholder {{{unknown[0]}}}; use "
                "{SPAN}, {SPAN:N}, {VERSION}, {VERSION:N}, {YYYY}, {MM} or {DD}."
            )
        found = [m.group(1) for m in _PLACEHOLDER.finditer(pattern)]
        repeated = sorted({n for n in found if found.count(n) > 1})
        if repeated:
            raise InvalidInputError(
                f"Input pattern {pattern!r} uses {{{repeated[0]}}} more than once."
            )
        date_parts = {"YYYY", "MM", "DD"} & set(found)
        if date_parts and date_parts != {"YYYY", "MM", "DD"}:
            raise InvalidInputError(
                f"Input pattern {pattern!r} names a date partly; use all of {{YYYY}}, {{MM}} "
                "and {DD}."
            )
        if date_parts and "SPAN" in found:
            raise InvalidInputError(
                f"Input pattern {pattern!r} mixes {{SPAN}} with a date; the date is the span."
            )
        regex = ""
        pos = 0
        for m in _PLACEHOLDER.finditer(pattern):
            regex += _glob(pattern[pos : m.start()])
            width = m.group(2)
            name = m.group(1).lower()
            fixed = {"yyyy": 4, "mm": 2, "dd": 2}.get(name)
            digits = rf"\d{{{width}}}" if width else (rf"\d{{{fixed}}}" if fixed else r"\d+")
            regex += f"(?P<{name}>{digits})"
            pos = m.end()
        regex += _glob(pattern[pos:])
        return cls(
            text=pattern,
            regex=re.compile(regex),
            has_span="SPAN" in found,
            has_version="VERSION" in found,
            has_date=bool(date_parts),
        )

    def match(self, relative: str) -> tuple[int, int | None] | None:
        """``(span, version)`` of a relative POSIX path, or None if it does not match."""
        m = self.regex.fullmatch(relative)
        if m is None:
            return None
        groups = m.groupdict()
        if self.has_date:
            try:
                day = dt.date(int(groups["yyyy"]), int(groups["mm"]), int(groups["dd"]))
            except ValueError:
                return None  # 2026-02-31 is not a date: the file is not part of any span
            span = (day - _EPOCH).days
        else:
            span = int(groups["span"]) if self.has_span else 0
        version = int(groups["version"]) if self.has_version else None
        return span, version


def _known(placeholder: str) -> bool:
    return _PLACEHOLDER.fullmatch("{" + placeholder + "}") is not None


def _glob(text: str) -> str:
    out = ""
    for ch in text:
        if ch == "*":
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        else:
            out += re.escape(ch)
    return out


def discover(input_dir: str | os.PathLike[str], pattern: str) -> list[SpanFiles]:
    """Every span under ``input_dir`` matching ``pattern``, at its highest version, by span.

    Raises:
        NotFoundError: ``input_dir`` is not a directory, or no file matches.
        InvalidInputError: a bad pattern.
    """
    compiled = SpanPattern.parse(pattern)
    root = Path(input_dir)
    if not root.is_dir():
        raise NotFoundError(f"Input directory {str(root)!r} does not exist.")
    found: dict[int, dict[int | None, list[str]]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith("."):
                continue
            rel = Path(dirpath, name).relative_to(root).as_posix()
            hit = compiled.match(rel)
            if hit is not None:
                found.setdefault(hit[0], {}).setdefault(hit[1], []).append(rel)
    if not found:
        raise NotFoundError(
            f"No file under {str(root)!r} matches pattern {pattern!r}; check the pattern "
            "and that the data was written there."
        )
    out = []
    for span in sorted(found):
        versions = found[span]
        best = max(versions, key=lambda v: -1 if v is None else v)
        out.append(SpanFiles(span, best, tuple(sorted(versions[best]))))
    return out


def select_spans(
    spans: Sequence[SpanFiles],
    *,
    span: int | None = None,
    span_range: Sequence[int] | None = None,
    last_n: int | None = None,
) -> list[SpanFiles]:
    """Pick spans: the latest (default), one ``span``, ``span_range=[first, last]``
    (inclusive) or the ``last_n`` spans; at most one of the three.

    Raises:
        InvalidInputError: several selectors, a malformed range, ``last_n < 1``.
        NotFoundError: the requested span(s) do not exist (the message lists those that do).
    """
    chosen = [x for x in (span, span_range, last_n) if x is not None]
    if len(chosen) > 1:
        raise InvalidInputError("Choose at most one of span, span_range and last_n.")
    known = [s.span for s in spans]
    if not spans:
        raise NotFoundError("There are no spans to choose from.")
    if span is not None:
        picked = [s for s in spans if s.span == span]
    elif span_range is not None:
        if len(span_range) != 2 or span_range[0] > span_range[1]:
            raise InvalidInputError(
                f"span_range {list(span_range)!r} must be [first, last] with first <= last."
            )
        picked = [s for s in spans if span_range[0] <= s.span <= span_range[1]]
    elif last_n is not None:
        if last_n < 1:
            raise InvalidInputError(f"last_n={last_n} must be at least 1.")
        start = max(known[0], known[-1] - last_n + 1)
        picked = [s for s in spans if s.span >= start]
    else:
        picked = [spans[-1]]
    if not picked:
        wanted = span if span is not None else span_range
        raise NotFoundError(f"Span {wanted!r} does not exist; the input has spans {known}.")
    return picked


def input_fingerprint(input_dir: str | os.PathLike[str], pattern: str) -> str:
    """SHA-256 over the relative path and content of every file matching ``pattern``.

    Used as ExampleGen's cache key part: a new span, a new version or an edited file changes
    it, so a cached ExampleGen never hides new data.
    """
    digest = hashlib.sha256()
    root = Path(input_dir)
    for s in discover(root, pattern):
        for rel in s.files:
            digest.update(f"{s.span}:{s.version}:{rel}\n".encode())
            with open(root / rel, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
    return "sha256:" + digest.hexdigest()
