"""The model repository extension of one worker: index, load and unload.

``POST /v2/repository/index`` (body ``{"ready": bool}``, optional) lists every model the
server's source holds or serves, each version with its state (``READY``, ``UNAVAILABLE``,
``LOADING``, ``UNLOADING``) and a reason. ``POST /v2/repository/models/NAME/load`` (body
``{"parameters": {"version": …} | {"alias": …}}``, optional) makes NAME served at exactly
the version the source resolves; ``…/unload`` stops serving NAME. Both are mutations: they
need the server's repository token (401 without it) and are off (403) on a server started
without one, unless the operator allowed them unauthenticated.

A load resolves the version and loads it in a worker thread (the event loop keeps serving),
with the source's digest and trust checks, then runs the warm-up inference; only a model that
passed both is swapped in, in one step, for NAME's previous versions. Loading what is
already served is a no-op. An unload (or the versions a load replaces) leaves the table at
once — new requests get 404 — then waits up to ``drain_timeout`` for the requests in
flight, stops the model's batcher and drops the model. Each worker of the server applies
the change (:mod:`loopline.serving.repository_state`); the request is answered when every
live worker has. The HTTP endpoints are :mod:`.repository_endpoint`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable

from loopline.errors import (
    BackendError,
    InvalidInputError,
    LooplineError,
    NotFoundError,
    StepTimeoutError,
)
from loopline.serving.batcher import AdaptiveBatcher
from loopline.serving.metrics import Metrics
from loopline.serving.model_table import Entry, ModelTable
from loopline.serving.options import ServedModel
from loopline.serving.repository import LoadParameters, LoadSpec, RepositoryOptions
from loopline.serving.repository_state import SharedState

log = logging.getLogger(__name__)

READY, UNAVAILABLE, LOADING, UNLOADING = "READY", "UNAVAILABLE", "LOADING", "UNLOADING"
_DRAIN_POLL_S = 0.01


class RepositoryControl:
    """This worker's side of the model repository extension (see the module docstring).

    Args:
        table: the worker's model table, changed in place.
        metrics: the worker's metrics (the ``ready`` gauge of loaded and unloaded models).
        options: the server's repository options (None: index only).
        worker_id: this worker's name in the shared state folder.
        make_batcher: the batcher of a new entry served with batching.
    """

    def __init__(
        self,
        table: ModelTable,
        metrics: Metrics,
        options: RepositoryOptions | None,
        worker_id: str,
        make_batcher: Callable[[Entry], AdaptiveBatcher],
    ) -> None:
        self.table = table
        self.metrics = metrics
        self.options = options or RepositoryOptions()
        self._make_batcher = make_batcher
        self._lock = asyncio.Lock()
        self._transit: dict[str, tuple[str, str]] = {}  # name → (state, version)
        self._failed: dict[str, tuple[str, str]] = {}  # name → (version, reason)
        self._unloaded: dict[str, str] = {}  # name → the version it last served
        self._generation = 0
        self._poller: asyncio.Task[None] | None = None
        state_dir = self.options.state_dir
        self.state = SharedState(state_dir, worker_id) if state_dir is not None else None

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Apply the models other workers loaded or unloaded, report, then start polling
        (before the worker accepts connections)."""
        if self.state is None:
            return
        async with self._lock:
            await self._converge()
        self._poller = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    async def _poll(self) -> None:
        assert self.state is not None
        while True:
            await asyncio.sleep(self.options.poll_seconds)
            try:
                if self.state.read().generation != self._generation:
                    async with self._lock:
                        await self._converge()
            except Exception:
                log.exception("Could not apply the model changes of the other workers.")

    async def _converge(self) -> None:
        """Apply the desired models of the shared state, then report them (lock held)."""
        assert self.state is not None
        desired = self.state.read()
        for name, spec in desired.models.items():
            try:
                await self._apply(name, spec)
            except Exception as exc:  # recorded for the index; the worker keeps serving
                log.error("Worker could not apply model %r: %s", name, exc)
        self._generation = desired.generation
        self.state.report(self._generation, self._status())

    # ------------------------------------------------------------------ queries
    def source_names(self) -> list[str]:
        """The names of the models the source holds (blocking: call it in a thread)."""
        source = self.options.source
        return source.names() if source is not None else []

    def unloaded_version(self, name: str) -> str:
        """The version ``name`` served before it was unloaded ("" when never unloaded)."""
        return self._unloaded.get(name, "")

    def index(self, names: list[str], *, ready_only: bool = False) -> list[dict[str, str]]:
        """The index of ``names`` (the source's and the served ones) as this worker sees it."""
        out: list[dict[str, str]] = []
        for name in [*names, *(n for n in self.table.names() if n not in names)]:
            rows = self._rows(name)
            out.extend(r for r in rows if not ready_only or r["state"] == READY)
        return out

    def _rows(self, name: str) -> list[dict[str, str]]:
        rows = []
        transit = self._transit.get(name)
        for entry in self.table.entries_of(name):
            state, reason = (READY, "") if entry.ready else (UNAVAILABLE, "warm-up failed")
            rows.append(index_row(name, entry.served.version, state, reason))
        if transit is not None and not any(r["version"] == transit[1] for r in rows):
            rows.append(index_row(name, transit[1], transit[0], ""))
        if name in self._failed:
            version, reason = self._failed[name]
            rows.append(index_row(name, version, UNAVAILABLE, f"load failed: {reason}"))
        if not rows:
            version = self._unloaded.get(name, "")
            reason = "unloaded" if version else "not loaded"
            rows.append(index_row(name, version, UNAVAILABLE, reason))
        return rows

    def _status(self) -> dict[str, dict[str, str]]:
        """What this worker serves, for the other workers: a failed load wins over the
        version still served, so the worker that took the request reports it."""
        names = {*self.table.names(), *self._failed, *self._unloaded}
        status = {}
        for name in sorted(names):
            entries = self.table.entries_of(name)
            if name in self._failed:
                version, reason = self._failed[name]
                status[name] = {"version": version, "state": UNAVAILABLE, "reason": reason}
            elif entries:
                status[name] = {"version": entries[0].served.version, "state": READY, "reason": ""}
            else:
                status[name] = {
                    "version": self._unloaded[name],
                    "state": UNAVAILABLE,
                    "reason": "unloaded",
                }
        return status

    # ---------------------------------------------------------------- mutations
    async def load(self, name: str, parameters: LoadParameters) -> LoadSpec:
        """Serve ``name`` at the version the source resolves, on every worker.

        Raises:
            NotFoundError: the source has no such model or version.
            InvalidInputError: a parameter does not apply, a digest does not match or the
                bundle is not trusted.
            StepTimeoutError: another worker has not applied it within converge_timeout.
            BackendError: another worker failed to load it (the message names it).
        """
        source = self.options.source
        if source is None:
            raise NotFoundError(f"Model {name!r} cannot be loaded: this server has no source.")
        spec = await asyncio.to_thread(source.resolve, name, parameters)
        async with self._lock:
            await self._apply(spec.name, spec)
            generation = await self._record(spec.name, spec)
        await self._wait_for_workers(generation, spec.name, spec.version)
        return spec

    async def unload(self, name: str) -> None:
        """Stop serving ``name`` on every worker (a no-op when it is not served).

        Raises:
            NotFoundError: neither this server nor its source knows ``name``.
            StepTimeoutError: another worker has not applied it within converge_timeout.
        """
        source = self.options.source
        known = await asyncio.to_thread(self.source_names)
        if name not in known and not self.table.entries_of(name) and name not in self._unloaded:
            raise NotFoundError(
                f"Unknown model {name!r}; this server serves {self.table.names()}"
                + (f" and {source.describe()} holds {known}." if source is not None else ".")
            )
        async with self._lock:
            await self._apply(name, None)
            generation = await self._record(name, None)
        await self._wait_for_workers(generation, name, None)

    async def _record(self, name: str, spec: LoadSpec | None) -> int:
        """Tell the other workers (lock held); the generation to wait for."""
        if self.state is None:
            return 0
        generation = self.state.desire(name, spec)
        await self._converge()
        return generation

    async def _apply(self, name: str, spec: LoadSpec | None) -> None:
        """Make this worker serve ``name`` as ``spec`` (None: not at all). Lock held."""
        current = self.table.entries_of(name)
        if spec is None:
            self._failed.pop(name, None)
            if current:
                self.table.swap(name, [])
                self._unloaded[name] = current[0].served.version
                await self._retire(name, current)
            return
        same = [
            e
            for e in current
            if e.ready and e.served.version == spec.version and e.served.aliases == spec.aliases
        ]
        if same:
            if len(current) > 1:
                self.table.swap(name, same[:1])
                await self._retire(name, [e for e in current if e is not same[0]])
            self._failed.pop(name, None)
            return
        source = self.options.source
        if source is None:
            raise NotFoundError(f"Model {name!r} cannot be loaded: this server has no source.")
        self._transit[name] = (LOADING, spec.version)
        try:
            served = await asyncio.to_thread(_load_and_warm_up, source.load, spec)
        except BaseException as exc:
            self._failed[name] = (spec.version, _reason(exc))
            raise
        finally:
            self._transit.pop(name, None)
        entry = Entry(served, (served.name, served.version), ready=True)
        if served.batching:
            entry.batcher = self._make_batcher(entry)
        self.table.swap(name, [entry])
        self.metrics.ready.set(entry.labels, 1.0)
        self._failed.pop(name, None)
        self._unloaded.pop(name, None)
        log.info("Loaded model %s version %s.", name, spec.version)
        await self._retire(name, current)

    async def _retire(self, name: str, entries: list[Entry]) -> None:
        """Wait for the requests that hold ``entries`` (at most drain_timeout), then stop
        their batchers and drop them."""
        if not entries:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.drain_timeout
        self._transit[name] = (UNLOADING, entries[0].served.version)
        try:
            while any(e.in_flight for e in entries) and loop.time() < deadline:
                await asyncio.sleep(_DRAIN_POLL_S)
            left = sum(e.in_flight for e in entries)
            if left:
                log.warning(
                    "Unloading model %s: %d request(s) still in flight after %.0f s; the "
                    "model stops anyway (they finish without batching).",
                    name,
                    left,
                    self.options.drain_timeout,
                )
            for entry in entries:
                entry.ready = False
                self.metrics.ready.set(entry.labels, 0.0)
                batcher, entry.batcher = entry.batcher, None
                if batcher is not None:
                    await asyncio.to_thread(batcher.close)
        finally:
            if self._transit.get(name, ("", ""))[0] == UNLOADING:
                self._transit.pop(name, None)
        entries.clear()
        gc.collect()

    async def _wait_for_workers(self, generation: int, name: str, version: str | None) -> None:
        if self.state is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.converge_timeout
        while True:
            statuses = self.state.statuses()
            behind = sorted(s.worker for s in statuses if s.generation < generation)
            if not behind:
                break
            if loop.time() >= deadline:
                what = f"version {version}" if version is not None else "the unload"
                raise StepTimeoutError(
                    f"Model {name!r} {what} is applied on worker {self.state.worker}, but "
                    f"workers {behind} have not applied it within "
                    f"{self.options.converge_timeout:g} s; they keep trying. Retry the "
                    "request to wait again."
                )
            await asyncio.sleep(min(self.options.poll_seconds, 0.05))
        for status in statuses:
            model = status.models.get(name, {})
            if (
                version is not None
                and model.get("version") == version
                and model.get("state") == UNAVAILABLE
                and model.get("reason") != "unloaded"
            ):
                raise BackendError(
                    f"Model {name!r} version {version} is loaded on worker {self.state.worker}, "
                    f"but worker {status.worker} could not load it: {model['reason']}."
                )



def index_row(name: str, version: str, state: str, reason: str) -> dict[str, str]:
    """One row of the repository index (no ``version`` key when ``version`` is empty)."""
    row = {"name": name, "version": version, "state": state, "reason": reason}
    if not version:
        del row["version"]
    return row


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, LooplineError) else f"{type(exc).__name__}: {exc}"


def _load_and_warm_up(load: Callable[[LoadSpec], ServedModel], spec: LoadSpec) -> ServedModel:
    served = load(spec)
    if (served.name, served.version) != (spec.name, spec.version):
        raise InvalidInputError(
            f"The source loaded {served.name!r} version {served.version} for {spec.name!r} "
            f"version {spec.version}."
        )
    if spec.aliases != served.aliases:
        served = ServedModel(
            served.name, served.version, served.model, spec.aliases, served.batching
        )
    model = served.model
    if not model.predict(model.example_batch()):
        raise InvalidInputError(
            f"Model {spec.name!r} version {spec.version}: the warm-up returned no outputs."
        )
    return served


__all__ = ["LOADING", "READY", "UNAVAILABLE", "UNLOADING", "RepositoryControl", "index_row"]
