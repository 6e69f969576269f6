"""Which served model answers a (name, version-or-alias) pair.

The table changes at run time when the model repository extension loads or unloads a model
(:mod:`loopline.serving.repository_control`): :meth:`ModelTable.swap` replaces every version of
one name in a single step, so a reload never leaves a moment without the model. An
:class:`Entry` counts the requests that hold it (``with entry:``), so an unload can wait for
them before it stops the model's batcher.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from loopline.errors import InvalidInputError, NotFoundError
from loopline.serving.batcher import AdaptiveBatcher
from loopline.serving.options import ServedModel


@dataclass(slots=True, eq=False)
class Entry:
    """A served model plus its run-time state (readiness, batcher, requests in flight).

    ``with entry:`` counts one request in flight for as long as the block runs; an unload
    waits until :attr:`in_flight` is back to 0.
    """

    served: ServedModel
    labels: tuple[str, str]
    ready: bool = False
    batcher: AdaptiveBatcher | None = None
    in_flight: int = 0

    def __enter__(self) -> Entry:
        self.in_flight += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self.in_flight -= 1


class ModelTable:
    """Lookup of served models by name and version number or alias.

    ``allow_empty`` lets a server start with no model (a model repository that loads its
    models on request).
    """

    def __init__(self, models: Sequence[ServedModel], *, allow_empty: bool = False) -> None:
        if not models and not allow_empty:
            raise InvalidInputError("The server needs at least one model to serve.")
        self.entries: list[Entry] = []
        self._by_key: dict[tuple[str, str], Entry] = {}
        self._default: dict[str, Entry] = {}
        self._absent: dict[str, str] = {}  # name → why it is not served (for the 404)
        self._index([Entry(m, (m.name, m.version)) for m in models])

    def _index(self, entries: list[Entry]) -> None:
        """Check ``entries`` and make them the table (nothing changes if they are invalid)."""
        by_key: dict[tuple[str, str], Entry] = {}
        default: dict[str, Entry] = {}
        for entry in entries:
            m = entry.served
            for key in (m.version, *m.aliases):
                if (m.name, key) in by_key:
                    raise InvalidInputError(
                        f"Model {m.name!r} version or alias {key!r} is served twice; each "
                        "version and alias may appear once."
                    )
                by_key[(m.name, key)] = entry
            if m.default and m.name in default and default[m.name].served.default:
                raise InvalidInputError(f"Model {m.name!r} has two default versions.")
            if m.name not in default or m.default:
                default[m.name] = entry
        self.entries, self._by_key, self._default = entries, by_key, default

    def get(self, name: str, version: str | None) -> Entry:
        """Raises NotFoundError naming the known models or versions."""
        if name not in self._default:
            if name in self._absent:
                raise NotFoundError(
                    f"Model {name!r} is not loaded ({self._absent[name]}); load it with "
                    f"POST /v2/repository/models/{name}/load."
                )
            raise NotFoundError(f"Unknown model {name!r}; this server serves {self.names()}.")
        if version is None:
            return self._default[name]
        entry = self._by_key.get((name, version))
        if entry is None:
            raise NotFoundError(
                f"Model {name!r} has no version or alias {version!r}; served: "
                f"{self.versions(name, with_aliases=True)}."
            )
        return entry

    def names(self) -> list[str]:
        return list(self._default)

    def versions(self, name: str, *, with_aliases: bool = False) -> list[str]:
        out = []
        for e in self.entries:
            if e.served.name == name:
                out.append(e.served.version)
                if with_aliases:
                    out.extend(e.served.aliases)
        return out

    def default_entry(self) -> Entry | None:
        """The one model of a single-model server (for MLflow's unnamed ``/invocations``)."""
        return next(iter(self._default.values())) if len(self._default) == 1 else None

    def entries_of(self, name: str) -> list[Entry]:
        """Every served version of ``name`` (none when it is not served)."""
        return [e for e in self.entries if e.served.name == name]

    def swap(
        self, name: str, new: Sequence[Entry], *, absent_reason: str = "unloaded"
    ) -> list[Entry]:
        """Serve ``new`` as the versions of ``name`` in place of the current ones, in one step;
        return the entries taken out. With ``new`` empty, ``name`` is no longer served and a
        request for it is answered with ``absent_reason``.

        Raises:
            InvalidInputError: an entry of ``new`` is not named ``name``, or ``new`` serves a
                version or alias twice (the table is unchanged).
        """
        for entry in new:
            if entry.served.name != name:
                raise InvalidInputError(
                    f"Model {entry.served.name!r} cannot be swapped in as {name!r}."
                )
        old = self.entries_of(name)
        kept = [e for e in self.entries if e.served.name != name]
        self._index([*kept, *new])
        if new:
            self._absent.pop(name, None)
        else:
            self._absent[name] = absent_reason
        return old
