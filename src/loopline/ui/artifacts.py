"""The Artifacts screen's data: artifacts newest first, one keyset page read from the store.

``/ui/artifacts?type=T&run=ID&after=ID`` filters by type name and by run (the artifacts
attributed to the run's context), and pages with the store's ``list_artifacts(after=,
limit=)``: page N is one indexed query like page 1, at 100,000 artifacts too.
"""

from __future__ import annotations

from dataclasses import dataclass

from loopline.errors import InvalidInputError, NotFoundError, shown
from loopline.metadata.entities import Artifact
from loopline.metadata.store import MetadataStore
from loopline.ui.paging import PAGE_SIZE, Page

MAX_TYPE_CHARS = 255


@dataclass(frozen=True, slots=True)
class ArtifactFilter:
    """The screen's filters, as the URL holds them."""

    type_name: str | None = None
    run: int | None = None


def artifact_filter(type_name: str | None, run: str | None) -> ArtifactFilter:
    """The ``type`` and ``run`` query parameters.

    Raises:
        InvalidInputError: ``type`` is longer than a type name can be, or ``run`` is not a
            run id (the message names the parameter).
    """
    if type_name is not None and len(type_name) > MAX_TYPE_CHARS:
        raise InvalidInputError(
            f"type = {shown(type_name)} is invalid: an artifact type name is at most "
            f"{MAX_TYPE_CHARS} characters; leave it out for every type."
        )
    if run is not None and (not run.isdigit() or not 0 < len(run) <= 18 or int(run) == 0):
        raise InvalidInputError(
            f"run = {shown(run)} is invalid: it is a run id (a positive integer, as on "
            "/ui/runs); leave it out for every run."
        )
    return ArtifactFilter(type_name or None, int(run) if run else None)


def artifacts_page(
    metadata: MetadataStore, chosen: ArtifactFilter, after: int | None
) -> Page[Artifact]:
    """One page of artifacts, newest first, after the id ``after``.

    Raises:
        NotFoundError: ``run`` names no run.
    """
    context_id = None
    if chosen.run is not None:
        try:
            context = metadata.get_context(chosen.run)
        except NotFoundError:
            context = None
        if context is None or context.type_name != "run":
            raise NotFoundError(f"run = {chosen.run} is not a run; list runs at /ui/runs.")
        context_id = context.id
    rows = metadata.list_artifacts(
        type_name=chosen.type_name, context_id=context_id, after=after, limit=PAGE_SIZE + 1
    )
    shown_rows = tuple(rows[:PAGE_SIZE])
    more = len(rows) > PAGE_SIZE
    return Page(
        shown_rows,
        None if after is None else str(after),
        str(shown_rows[-1].id) if more else None,
    )
