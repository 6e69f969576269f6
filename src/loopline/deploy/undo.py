"""``rollout undo``: copy an earlier revision's template into the spec (kubectl semantics)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from loopline.deploy.revision import Revision
from loopline.deploy.spec import DeploymentSpec
from loopline.errors import ConflictError, NotFoundError


@dataclass(frozen=True, slots=True)
class UndoResult:
    """The spec to store and which revision it returns to; ``skipped`` if nothing changed."""

    spec: DeploymentSpec
    revision: Revision
    skipped: bool


def undo(spec: DeploymentSpec, revisions: list[Revision], to_revision: int = 0) -> UndoResult:
    """Roll ``spec`` back to revision ``to_revision`` (0: the previous one).

    Like ``kubectl rollout undo`` for apps/v1: refused while paused; revision 0 means the
    revision with the second-highest number; when the template already equals the target
    the result is ``skipped``. Only the template changes; replicas, strategy and the rest
    stay as they are.

    Raises:
        ConflictError: the deployment is paused.
        NotFoundError: there is no such revision (or no previous one).
    """
    if spec.paused:
        raise ConflictError(
            f"Deployment {spec.name!r} is paused; resume it before undoing a rollout."
        )
    by_number = sorted(revisions, key=lambda r: r.number)
    if to_revision == 0:
        if len(by_number) < 2:
            raise NotFoundError(
                f"Deployment {spec.name!r} has no previous revision to undo to; "
                f"known revisions: {[r.number for r in by_number]}."
            )
        target = by_number[-2]
    else:
        matches = [r for r in by_number if r.number == to_revision]
        if not matches:
            raise NotFoundError(
                f"Deployment {spec.name!r} has no revision {to_revision}; known revisions: "
                f"{[r.number for r in by_number]}."
            )
        target = matches[0]
    if target.template == spec.template:
        return UndoResult(spec=spec, revision=target, skipped=True)
    return UndoResult(spec=replace(spec, template=target.template), revision=target, skipped=False)
