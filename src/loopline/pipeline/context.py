"""Experiment tracking inside a step: ``ctx.log_metrics``, ``ctx.log_params``, ``ctx.set_tags``.

Declare a parameter annotated ``StepContext`` in a component and the runner passes one in.
What is logged lands on the step's execution in the metadata store (metrics with history by
``step``; params and tags as properties), so runs can be compared with ``loopline runs diff``.

``ctx.metadata`` and ``ctx.artifacts`` are the run's metadata and artifact stores, for the few
steps that act on the platform itself (Pusher registers a model version). They are set for
``isolation="thread"`` steps only; a ``"process"`` step gets None and must not need them.

``ctx.trust`` is what a step that loads a model bundle (Evaluator) passes to ``load_model``:
the operator's :class:`~loopline.bundle.Trust`, given to the runner by the composition root
(``LOOPLINE_TRUSTED_LOADERS``, ``LOOPLINE_TRUSTED_TYPES``); a ``"process"`` step gets the same.
None means loopline's built-in trust only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loopline.errors import InvalidInputError
from loopline.types import Json

if TYPE_CHECKING:
    from loopline.artifacts.store import ArtifactStore
    from loopline.bundle import Trust
    from loopline.metadata.store import MetadataStore


@dataclass
class StepContext:
    """What a running step may record about itself, plus where it runs."""

    run_name: str
    step_id: str
    execution_id: int
    attempt: int = 1
    metrics: list[tuple[str, float, int]] = field(default_factory=list)
    params: dict[str, Json] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metadata: MetadataStore | None = field(default=None, repr=False)
    artifacts: ArtifactStore | None = field(default=None, repr=False)
    trust: Trust | None = field(default=None, repr=False)

    def log_metrics(
        self, metrics: Mapping[str, float] | None = None, *, step: int = 0, **kw: float
    ) -> None:
        """Record metric values (finite numbers) at an optional training ``step``."""
        values = {**(metrics or {}), **kw}
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInputError(f"Metric {key!r} has value {value!r}; metrics are numbers.")
            if not math.isfinite(value):
                raise InvalidInputError(f"Metric {key!r} is {value}; metrics must be finite.")
            self.metrics.append((key, float(value), step))

    def log_params(self, params: Mapping[str, Json] | None = None, **kw: Json) -> None:
        """Record parameters (JSON values) that describe this run of the step."""
        self.params.update({**(params or {}), **kw})

    def set_tags(self, tags: Mapping[str, str] | None = None, **kw: str) -> None:
        """Attach string tags to this run of the step."""
        for key, value in {**(tags or {}), **kw}.items():
            self.tags[key] = str(value)
