"""What each console screen shows, read through the control plane's own operations.

:class:`ConsoleReads` asks the :class:`~loopline.controlplane.ControlPlane` (the same calls
the API's GET routes make), the model registry and the run history (the same queries as
``loopline models`` and ``loopline runs``), then hands the results to the pure builders of
:mod:`loopline.ui.overview`, :mod:`loopline.ui.actions` and :mod:`loopline.ui.dag`; the
deployment page is :mod:`loopline.ui.deployments` (either engine: local or Kubernetes). Every
method blocks (store reads): the routes call them on the thread pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loopline.controlplane import ControlPlane
from loopline.errors import LooplineError, NotFoundError, shown
from loopline.metadata.entities import Artifact, EventType, ModelVersion
from loopline.pipeline.runs import RunHistory, RunRecord, StepRecord
from loopline.registry import AliasMove, ModelSummary
from loopline.types import JsonDict
from loopline.ui.dag import DagLayout, DagNode, Timeline, layout, timeline
from loopline.ui.deployments import DeploymentReads, DeploymentScreen
from loopline.ui.lineage import LineageScreen, lineage_screen
from loopline.ui.monitoring import WINDOWS, MonitorScreen, listens_to, monitor_screen
from loopline.ui.overview import OverviewRow, at, overview_row
from loopline.ui.paging import PAGE_SIZE, Page, page_by_name
from loopline.ui.runs import (
    LOG_LINES,
    Comparison,
    RunRow,
    StepLog,
    compare,
    read_log,
    run_row,
)

BLESSING_TYPE = "ModelBlessing"


@dataclass(frozen=True, slots=True)
class Blessing:
    artifact_id: int
    blessed: bool
    forced: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class VersionRow:
    version: ModelVersion
    aliases: tuple[str, ...]
    blessings: tuple[Blessing, ...]
    deployed: tuple[str, ...]  # deployments whose current revision serves it


@dataclass(frozen=True, slots=True)
class ModelScreen:
    name: str
    aliases: dict[str, int]
    versions: Page[VersionRow]
    history: tuple[AliasMove, ...]


@dataclass(frozen=True, slots=True)
class StepPanel:
    """The step chosen on the run page (``?step=``): its record, log tail and why it ran."""

    step: StepRecord
    log: StepLog
    why: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RunScreen:
    run: RunRecord
    dag: DagLayout | None
    edges: int
    timeline: Timeline | None = None  # drawn instead of the DAG past MAX_NODES steps
    step: StepPanel | None = None


class ConsoleReads:
    """The console's reads over a control plane (its registry and metadata store included)."""

    def __init__(self, service: ControlPlane, log_directory: Path | None = None) -> None:
        self.s = service
        self.log_directory = log_directory
        self.registry = service.pinner.registry
        self.metadata = service.pinner.metadata
        self.deployments = DeploymentReads(service)

    # ---- deployments ---------------------------------------------------------------------

    def overview(self, after: str | None) -> Page[OverviewRow]:
        views = {str(at(v, "metadata", "name")): v for v in self.s.list_deployments()}
        page = page_by_name(views, lambda n: n, after)
        monitors = self._optional(lambda: self.s.monitors().list())
        triggers = self._optional(lambda: self.s.triggers().list())
        rows = []
        for name in page.items:
            try:
                revisions = self.s.revisions(name)
            except NotFoundError:  # deleted since the list was read
                continue
            rows.append(overview_row(views[name], revisions, monitors, triggers))
        return Page(tuple(rows), page.after, page.next_after)

    def deployment(self, name: str) -> DeploymentScreen:
        """The deployment page, on either engine (:mod:`loopline.ui.deployments`)."""
        return self.deployments.screen(name)

    @staticmethod
    def _optional(read: Any) -> list[JsonDict]:
        try:
            return list(read())
        except LooplineError:  # this control plane keeps no monitors / triggers
            return []

    # ---- registry ------------------------------------------------------------------------

    def models(self, after: str | None) -> Page[ModelSummary]:
        """Models by name, one keyset page of names from the store, then each one's versions."""
        names = self.metadata.list_model_names(after=after, limit=PAGE_SIZE + 1)
        aliases: dict[str, dict[str, int]] = {}
        for a in self.metadata.list_model_aliases():
            aliases.setdefault(a.name, {})[a.alias] = a.version
        rows = []
        for name in names[:PAGE_SIZE]:
            versions = self.metadata.list_model_versions(name)
            if versions:  # not collected since the names were read
                rows.append(ModelSummary(name, versions[-1].version, len(versions),
                                         aliases.get(name, {})))  # fmt: skip
        more = len(names) > PAGE_SIZE
        return Page(tuple(rows), after, names[PAGE_SIZE - 1] if more else None)

    def model(self, name: str, after: int | None) -> ModelScreen:
        """A model's versions newest first, one keyset page read from the store."""
        versions = self.metadata.list_model_versions(
            name, newest_first=True, after=after, limit=PAGE_SIZE + 1
        )
        if not versions and after is None:
            self.registry.get_model(name)  # raises NotFoundError naming the known models
        more = len(versions) > PAGE_SIZE
        page = Page(
            tuple(versions[:PAGE_SIZE]),
            None if after is None else str(after),
            str(versions[PAGE_SIZE - 1].version) if more else None,
        )
        model_aliases = {a.alias: a.version for a in self.metadata.list_model_aliases(name)}
        blessings = self._blessings([v.artifact_id for v in page.items])
        by_version: dict[int, list[str]] = {}
        for alias, version in sorted(model_aliases.items()):
            by_version.setdefault(version, []).append(alias)
        deployed: dict[str, list[str]] = {}
        for view in self.s.list_deployments():
            pinned = str(at(view, "status", "model", "pinned"))
            deployed.setdefault(pinned, []).append(str(at(view, "metadata", "name")))
        rows = tuple(
            VersionRow(
                version=v,
                aliases=tuple(by_version.get(v.version, ())),
                blessings=tuple(blessings.get(v.artifact_id, ())),
                deployed=tuple(deployed.get(f"{name}/{v.version}", ())),
            )
            for v in page.items
        )
        return ModelScreen(
            name=name,
            aliases=model_aliases,
            versions=Page(rows, page.after, page.next_after),
            history=tuple(self.registry.alias_history(name)[:50]),
        )

    def _blessings(self, model_ids: list[int]) -> dict[int, list[Blessing]]:
        """The ModelBlessing artifacts written about each model artifact (by the Evaluator:
        an execution that read the model and wrote the blessing)."""
        if not model_ids:
            return {}
        readers = {
            e.execution_id
            for e in self.metadata.get_events(artifact_ids=model_ids)
            if e.type is EventType.INPUT
        }
        outputs = [
            e.artifact_id
            for e in self.metadata.get_events(execution_ids=sorted(readers))
            if e.type is EventType.OUTPUT
        ]
        found: dict[int, list[Blessing]] = {}
        for art in self.metadata.get_artifacts(sorted(set(outputs))):
            about = art.properties.get("current_model_id")
            if art.type_name == BLESSING_TYPE and isinstance(about, int):
                found.setdefault(about, []).append(_blessing(art))
        return found

    # ---- runs ----------------------------------------------------------------------------

    def runs(self, after: int | None) -> Page[RunRow]:
        """Runs newest first: one keyset query for the page, one for its steps' states."""
        md = self.metadata
        contexts = md.list_contexts(type_name="run", after=after, limit=PAGE_SIZE + 1)
        shown = contexts[:PAGE_SIZE]
        counts = md.count_executions([c.id for c in shown])
        rows = tuple(run_row(c, counts.get(c.id, {})) for c in shown)
        more = len(contexts) > PAGE_SIZE
        return Page(
            rows, None if after is None else str(after), str(rows[-1].id) if more else None
        )

    def run(self, run_id: int, step: str | None = None, tail: int = LOG_LINES) -> RunScreen:
        """A run with its DAG (or, past :data:`~loopline.ui.dag.MAX_NODES` steps, its
        timeline); with ``step``, that step's log tail and why it ran."""
        history = RunHistory(self.metadata)
        record = history.show(str(run_id))
        chosen = None
        if step is not None:
            s = record.step(step)  # NotFoundError listing the steps
            execution = self.metadata.get_execution(s.execution_id)
            chosen = StepPanel(s, read_log(execution.log_uri, tail),
                               tuple(history.why(str(run_id), step)))  # fmt: skip
        producers = {
            artifact: step.name for step in record.steps for artifact in step.outputs.values()
        }
        edges = [
            (producers[a], step.name)
            for step in record.steps
            for a in step.inputs.values()
            if a in producers
        ]
        nodes = [DagNode(s.name, s.name, s.status, s.cached) for s in record.steps]
        dag = layout(nodes, edges)
        bars = None
        if dag is None:
            now = datetime.now(UTC)
            bars = timeline([(n, _when(s.started_at), _when(s.ended_at))
                             for n, s in zip(nodes, record.steps, strict=True)], now)  # fmt: skip
        return RunScreen(record, dag, len(set(edges)), bars, chosen)

    def compare(self, a: int, b: int) -> Comparison:
        """Two runs side by side, with their outputs' content digests."""
        history = RunHistory(self.metadata)
        ra, rb = history.show(str(a)), history.show(str(b))
        ids = sorted({i for r in (ra, rb) for s in r.steps for i in s.outputs.values()})
        digests = {int(x.id): x.digest for x in self.metadata.get_artifacts(ids)}
        return compare(ra, rb, digests)

    # ---- monitors ------------------------------------------------------------------------

    def monitors(self, after: str | None, deployment: str | None = None) -> Page[JsonDict]:
        """Monitors by name; with ``deployment``, only those watching it."""
        views = [m for m in self.s.monitors().list()
                 if deployment is None or at(m, "spec", "deployment") == deployment]  # fmt: skip
        return page_by_name(views, lambda m: str(at(m, "metadata", "name")), after)

    def monitor(
        self, name: str, version: str | None, feature: str | None, window: int | None
    ) -> MonitorScreen:
        ops = self.s.monitors()
        status = ops.status(name)
        known = [v.version for v in status.versions]
        if version is not None and version not in known:
            raise NotFoundError(
                f"version={shown(version)} is not a version monitor {name!r} has windows of; "
                f"it has {', '.join(known) or 'none yet'}."
            )
        chosen = version if version is not None else (known[-1] if known else None)
        windows = ops.store.windows(name, version=chosen, limit=WINDOWS) if chosen else []
        triggers = [t for t in self._optional(lambda: self.s.triggers().list())
                    if listens_to(t, name)]  # fmt: skip
        runs: list[JsonDict] = []
        for t in triggers:
            runs += self.s.triggers().history(str(at(t, "metadata", "name")), 20)
        runs.sort(key=lambda r: str(r.get("createdAt")), reverse=True)
        return monitor_screen(status, windows, version=chosen, feature=feature, window=window,
                              triggers=triggers, runs=runs[:20])  # fmt: skip

    # ---- lineage -------------------------------------------------------------------------

    def lineage(self, ref: str) -> LineageScreen:
        """The Lineage screen; ``prediction/…`` references search ``log_directory``, else
        the prediction logs the control plane's monitors read."""
        logs = self.log_directory
        if logs is None and self.s.monitors_ops is not None:
            logs = self.s.monitors_ops.log_root
        return lineage_screen(
            self.metadata, ref, logs, self.registry, self.s.list_deployments()
        )


def _blessing(art: Artifact) -> Blessing:
    reasons = art.properties.get("reasons")
    return Blessing(
        artifact_id=int(art.id),
        blessed=art.properties.get("blessed") == 1,
        forced=art.properties.get("forced") == 1,
        reasons=tuple(str(r) for r in reasons) if isinstance(reasons, list) else (),
    )


def _when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))

