"""Which served model answers a (name, version-or-alias) pair."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from loopline.errors import InvalidInputError, NotFoundError
from loopline.serving.batcher import AdaptiveBatcher
from loopline.serving.options import ServedModel


@dataclass(slots=True, eq=False)
class Entry:
    """A served model plus its run-time state (readiness, batcher)."""

    served: ServedModel
    labels: tuple[str, str]
    ready: bool = False
    batcher: AdaptiveBatcher | None = None


class ModelTable:
    """Lookup of served models by name and version number or alias."""

    def __init__(self, models: Sequence[ServedModel]) -> None:
        if not models:
            raise InvalidInputError("The server needs at least one model to serve.")
        self.entries = [Entry(m, (m.name, m.version)) for m in models]
        self._by_key: dict[tuple[str, str], Entry] = {}
        self._default: dict[str, Entry] = {}
        for entry in self.entries:
            m = entry.served
            for key in (m.version, *m.aliases):
                if (m.name, key) in self._by_key:
                    raise InvalidInputError(
                        f"Model {m.name!r} version or alias {key!r} is served twice; each "
                        "version and alias may appear once."
                    )
                self._by_key[(m.name, key)] = entry
            if m.default and m.name in self._default and self._default[m.name].served.default:
                raise InvalidInputError(f"Model {m.name!r} has two default versions.")
            if m.name not in self._default or m.default:
                self._default[m.name] = entry

    def get(self, name: str, version: str | None) -> Entry:
        """Raises NotFoundError naming the known models or versions."""
        if name not in self._default:
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
