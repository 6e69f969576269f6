"""Resolvers: pipeline nodes that pick existing artifacts from the metadata store.

* :data:`latest_blessed_model` — TFX's ``LatestBlessedModelStrategy`` within this pipeline:
  the newest live Model with a live ModelBlessing (``blessed == 1``) of it; the Evaluator's
  baseline.
* :func:`previous_span_statistics` — the statistics of the newest span *before* the span
  ExampleGen will read (found with the same pattern), for ExampleValidator's drift check. On a
  rerun of the same span it resolves the same artifact as before, so caching still holds.
* :data:`latest_examples` — the Examples of the newest span seen by this pipeline.
* :func:`last_n_spans` — a plain query: Examples of the last N spans (newest first), as TFX's
  rolling range; to *train* on several spans, give ExampleGen ``last_n_spans=N``.
"""

from __future__ import annotations

from loopline.components.spans import discover, select_spans
from loopline.errors import NotFoundError
from loopline.metadata.entities import Artifact, ArtifactState
from loopline.metadata.store import MetadataStore
from loopline.pipeline import Examples, ExampleStatistics, Model, Step
from loopline.pipeline.resolver import resolver

PIPELINE_CONTEXT = "pipeline"


def _context_id(store: MetadataStore, pipeline: str) -> int | None:
    ctx = store.find_context(PIPELINE_CONTEXT, pipeline)
    return ctx.id if ctx is not None else None


def _by_span(store: MetadataStore, pipeline: str, type_name: str) -> dict[int, Artifact]:
    """Newest live artifact of ``type_name`` per ``span`` property, within the pipeline."""
    cid = _context_id(store, pipeline)
    if cid is None:
        return {}
    out: dict[int, Artifact] = {}
    for art in store.list_artifacts(
        type_name=type_name, state=ArtifactState.LIVE, context_id=cid, newest_first=True
    ):
        span = art.properties.get("span")
        if isinstance(span, int) and not isinstance(span, bool) and span not in out:
            out[span] = art
    return out


@resolver(output=Model, name="latest_blessed_model")
def latest_blessed_model(store: MetadataStore, pipeline: str) -> Artifact | None:
    """The newest blessed Model of this pipeline, or None (first run)."""
    cid = _context_id(store, pipeline)
    if cid is None:
        return None
    return store.latest_blessed_model(context_id=cid)


@resolver(output=Examples, name="latest_examples")
def latest_examples(store: MetadataStore, pipeline: str) -> Artifact | None:
    """The Examples of the newest span this pipeline has ingested, or None."""
    spans = _by_span(store, pipeline, Examples.type_name)
    return spans[max(spans)] if spans else None


def last_n_spans(store: MetadataStore, pipeline: str, n: int) -> list[Artifact]:
    """Examples of the last ``n`` spans ingested by ``pipeline``, newest span first."""
    spans = _by_span(store, pipeline, Examples.type_name)
    if not spans:
        return []
    start = max(min(spans), max(spans) - n + 1)
    return [spans[s] for s in sorted(spans, reverse=True) if s >= start]


@resolver(output=ExampleStatistics, name="previous_span_statistics")
def _previous_span_statistics(
    store: MetadataStore,
    pipeline: str,
    input_dir: str,
    pattern: str,
    span: int | None = None,
) -> Artifact | None:
    try:
        current = select_spans(discover(input_dir, pattern), span=span)[-1].span
    except NotFoundError:
        return None
    earlier = {
        s: a
        for s, a in _by_span(store, pipeline, ExampleStatistics.type_name).items()
        if s < current
    }
    return earlier[max(earlier)] if earlier else None


def previous_span_statistics(
    *,
    input_dir: str,
    pattern: str,
    span: int | None = None,
    id: str = "previous_statistics",
) -> Step:
    """A resolver step: statistics of the newest span before the one ExampleGen will read."""
    return _previous_span_statistics(input_dir=input_dir, pattern=pattern, span=span).with_id(id)
