"""The third-party packages an image installs: loopline's requirements for the chosen extras
and everything they pull in, pinned to the versions installed where ``loopline build`` runs.

So the image runs the versions that were tested here, pip resolves nothing at build time, and
the dependency layer changes only when an installed version does. Markers are evaluated for
this interpreter, so the image's base should run the same Python minor version (3.11 for
``python:3.11-slim`` and Debian bookworm).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from dataclasses import dataclass

from loopline.errors import DependencyMissingError, InvalidInputError

PROJECT = "loopline"


@dataclass(frozen=True, slots=True, order=True)
class Pin:
    """One installed distribution, as ``name==version`` in ``requirements.txt``."""

    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


def known_extras(project: str = PROJECT) -> tuple[str, ...]:
    """The extras ``project`` declares, sorted."""
    metadata = importlib.metadata.metadata(project)
    return tuple(sorted(set(metadata.get_all("Provides-Extra") or ())))


def pinned_requirements(extras: Sequence[str], *, project: str = PROJECT) -> tuple[Pin, ...]:
    """Every distribution ``project[extras]`` needs, transitively, at its installed version.

    ``project`` itself is not pinned (the image builds it from source). Extras that name
    the project again (``all = ["loopline[serve,…]"]``) are followed.

    Raises:
        InvalidInputError: an extra the project does not declare (the known ones are named).
        DependencyMissingError: a needed distribution is not installed here.
    """
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    known = known_extras(project)
    for extra in extras:
        if extra not in known:
            raise InvalidInputError(
                f"Extra {extra!r} is not one of {project}'s extras ({', '.join(known)}); "
                "pass --extras with names from that list."
            )
    own = canonicalize_name(project)
    pins: dict[str, Pin] = {}
    seen: set[tuple[str, str]] = set()
    queue: list[tuple[str, str, str]] = [(project, e, f"{project}[{e}]") for e in extras]
    queue.append((project, "", project))
    while queue:
        name, extra, wanted_by = queue.pop()
        key = (canonicalize_name(name), extra)
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise DependencyMissingError(
                f"The image needs {name!r} (required by {wanted_by}), which is not installed "
                f"here; the image pins what is installed, so install it first: pip install "
                f"'{project}[{','.join(extras) or 'serve'}]'"
            ) from None
        if canonicalize_name(name) != own:
            pins[canonicalize_name(name)] = Pin(canonicalize_name(name), dist.version)
        for text in dist.requires or ():
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": extra}):
                continue
            if req.marker is None and extra:
                continue  # unconditional requirements were followed with extra ""
            queue.append((req.name, "", f"{name}"))
            queue += [(req.name, e, f"{name}") for e in sorted(req.extras)]
    return tuple(sorted(pins.values()))


def requirements_text(pins: Sequence[Pin]) -> str:
    """``requirements.txt`` for ``pins``: one ``name==version`` a line, sorted."""
    header = "# Pinned by loopline build to the versions installed where it ran.\n"
    return header + "".join(f"{pin}\n" for pin in sorted(pins))
