"""A deterministic autoscaler simulator: "what would this spec do to this traffic?".

:func:`simulate` replays a :class:`LoadTrace` (seconds → requests per second) against replicas
modelled by a :class:`CapacityModel`, on a fake clock in one-second steps, and runs
:func:`~loopline.deploy.hpa.decide` every sync period exactly as the control plane does. It
returns the replica timeline and the scale events. Tests drive the HPA's worked examples through
it; ``loopline autoscale simulate`` shows it to people tuning ``behavior``.

The model, per second, with ``n`` ready replicas each serving ``capacity_rps`` (μ) at 100 % CPU:

- the router spreads the load evenly over ready replicas; with none ready it holds requests
  (the activator) and pokes the autoscaler at once, then hands them over when one is ready;
- arrivals per replica ``a = load / n``; work beyond ``n·μ`` queues as a backlog, and what
  would wait longer than ``max_queue_seconds`` is shed (503, as ``loopline serve`` does after
  ``maxLatencyMs``);
- CPU = ``workers × served / μ`` cores (a replica loading its model burns all its cores);
- queue delay = the M/M/1 wait ``ρ / (μ (1 − ρ))`` at ``ρ = min(a/μ, 0.99)`` plus backlog / μ;
- in flight = Little's law, ``served × (service time + wait) + backlog``, with the service time
  ``workers / μ``;
- metrics are the averages over the last sync period; a new replica is pending for
  ``startup_seconds`` and its metrics are missing for ``metrics_delay_seconds`` after it turns
  ready (a scraper that has not reached it yet).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field

from loopline.deploy.autoscaler_state import AutoscalerState
from loopline.deploy.autoscaling import Autoscaling, MetricTargetType
from loopline.deploy.hpa import AutoscaleDecision, Demand, decide
from loopline.deploy.replica import ReplicaPhase
from loopline.deploy.replica_calculator import CPU_INITIALIZATION_PERIOD, ReplicaSample
from loopline.errors import InvalidInputError
from loopline.types import JsonDict

_RHO_MAX = 0.99  # the M/M/1 wait at saturation; the backlog carries the rest


@dataclass(frozen=True, slots=True)
class LoadTrace:
    """Requests per second over time: each point holds until the next; the last ends it."""

    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if not self.points or self.points[0][0] != 0:
            raise InvalidInputError("A load trace must start at 0 seconds; add a row '0,<rps>'.")
        for (t0, _), (t1, _) in zip(self.points, self.points[1:], strict=False):
            if t1 <= t0:
                raise InvalidInputError(f"Load trace seconds must increase: {t1:g} follows {t0:g}.")
        for t, rps in self.points:
            if rps < 0 or not math.isfinite(rps):
                raise InvalidInputError(f"Load trace rate {rps!r} at {t:g} s must be >= 0.")

    @classmethod
    def from_csv(cls, text: str, source: str = "trace") -> LoadTrace:
        """Parse CSV with the header ``seconds,requests_per_second``, then one row per change.

        Blank lines and lines starting with ``#`` are skipped.

        Raises:
            InvalidInputError: the header is wrong or a row is not two numbers (names the line).
        """
        points: list[tuple[float, float]] = []
        header_seen = False
        for line, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            row = [c.strip() for c in next(csv.reader([raw]))]
            if not header_seen:
                if row != ["seconds", "requests_per_second"]:
                    raise InvalidInputError(
                        f"{source} line {line} is {raw.strip()!r}; the header must be "
                        "'seconds,requests_per_second'."
                    )
                header_seen = True
                continue
            try:
                if len(row) != 2:
                    raise ValueError
                t, rps = float(row[0]), float(row[1])
            except ValueError:
                raise InvalidInputError(
                    f"{source} line {line} is {raw.strip()!r}; write two numbers: "
                    "seconds,requests_per_second."
                ) from None
            if not (math.isfinite(t) and math.isfinite(rps)) or t < 0 or rps < 0:
                raise InvalidInputError(
                    f"{source} line {line} is {raw.strip()!r}; seconds and requests_per_second "
                    "must be finite and at least 0."
                )
            if points and t <= points[-1][0]:
                raise InvalidInputError(
                    f"{source} line {line}: seconds {t:g} must be greater than the previous "
                    f"row's {points[-1][0]:g}."
                )
            points.append((t, rps))
        if not header_seen:
            raise InvalidInputError(
                f"{source} is empty; write the header 'seconds,requests_per_second' and rows."
            )
        if not points:
            raise InvalidInputError(f"{source} holds no rows after its header.")
        try:
            return cls(tuple(points))
        except InvalidInputError as exc:
            raise InvalidInputError(f"{source}: {exc}") from None

    @property
    def duration(self) -> float:
        return self.points[-1][0]

    def rate_at(self, t: float) -> float:
        rate = self.points[0][1]
        for start, rps in self.points:
            if start > t:
                break
            rate = rps
        return rate


@dataclass(frozen=True, slots=True)
class CapacityModel:
    """How one replica behaves under load."""

    capacity_rps: float = 50.0
    """Requests per second one replica answers at 100 % CPU."""
    workers: int = 1
    """Worker processes per replica: its CPU request in cores."""
    startup_seconds: float = 20.0
    """From start to ready (loading the model)."""
    metrics_delay_seconds: float = 0.0
    """After turning ready, how long its metrics are missing."""
    max_queue_seconds: float = 1.0
    """Requests that would queue longer are shed (``spec.template.batching.maxLatencyMs``)."""

    def __post_init__(self) -> None:
        if not self.capacity_rps > 0:
            raise InvalidInputError(f"capacity_rps {self.capacity_rps!r} must be above 0.")
        if self.workers < 1 or min(self.startup_seconds, self.metrics_delay_seconds,
                                   self.max_queue_seconds) < 0:  # fmt: skip
            raise InvalidInputError(
                "workers must be at least 1; startup_seconds, metrics_delay_seconds and "
                "max_queue_seconds at least 0."
            )


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """The deployment at one autoscaler sync, after its decision."""

    t: float
    load_rps: float
    desired: int
    ready: int
    held: int
    """Requests the router holds for want of a ready replica."""
    shed: int
    """Requests shed (503) since the previous sync because the replicas were saturated."""
    metrics: tuple[tuple[str, float | None], ...]
    """(``kubectl get hpa`` name, current value): CPU in %, Pods metrics in their unit."""

    def to_dict(self) -> JsonDict:
        return {"t": self.t, "loadRps": self.load_rps, "desired": self.desired,
                "ready": self.ready, "held": self.held, "shed": self.shed,
                "metrics": dict(self.metrics)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ScaleEvent:
    """A rescale: ``before`` → ``after`` replicas at ``t``, with the HPA's event message."""

    t: float
    before: int
    after: int
    message: str

    def to_dict(self) -> JsonDict:
        return {"t": self.t, "from": self.before, "to": self.after, "message": self.message}


@dataclass(frozen=True, slots=True)
class SimulationResult:
    timeline: tuple[TimelineRow, ...]
    events: tuple[ScaleEvent, ...]
    state: AutoscalerState
    """The autoscaler's state at the end."""

    def to_dict(self) -> JsonDict:
        return {"timeline": [r.to_dict() for r in self.timeline],
                "events": [e.to_dict() for e in self.events]}  # fmt: skip


@dataclass(slots=True)
class _Replica:
    id: str
    started_at: float
    ready_at: float
    window: list[tuple[float, float, float, float] | None] = field(default_factory=list)
    """Per second of the current sync period: (cpu, in flight, rps, queue delay), None before
    ready (its CPU counts, loading, but nothing else does)."""
    loading_cpu: float = 0.0


def simulate(
    spec: Autoscaling,
    trace: LoadTrace,
    capacity: CapacityModel = CapacityModel(),
    *,
    sync_period: float = 15.0,
    initial_replicas: int = 1,
) -> SimulationResult:
    """Run the autoscaler against ``trace``; ``initial_replicas`` are ready at 0 s."""
    if sync_period <= 0 or sync_period != int(sync_period):
        raise InvalidInputError(f"sync period {sync_period!r} must be a whole number of seconds.")
    if initial_replicas < 0:
        raise InvalidInputError(f"initial replicas {initial_replicas} must be at least 0.")
    sim = _Sim(spec, capacity)
    born = -(CPU_INITIALIZATION_PERIOD + capacity.startup_seconds)
    for _ in range(initial_replicas):
        sim.start(born)
    period = int(sync_period)
    for second in range(math.ceil(trace.duration)):
        sim.step(second, trace.rate_at(second))
        now = float(second + 1)
        poke = spec.scale_to_zero is not None and not sim.replicas and sim.held > 0
        if (second + 1) % period == 0 or poke:  # the activator pokes the autoscaler at zero
            sim.sync(now, trace.rate_at(now), float(period))
    return SimulationResult(tuple(sim.rows), tuple(sim.events), sim.state)


class _Sim:
    def __init__(self, spec: Autoscaling, capacity: CapacityModel) -> None:
        self.spec, self.cap = spec, capacity
        self.replicas: list[_Replica] = []
        self.state = AutoscalerState()
        self.rows: list[TimelineRow] = []
        self.events: list[ScaleEvent] = []
        self.held = 0.0  # requests held by the router while nothing is ready
        self.backlog = 0.0  # requests queued beyond the ready replicas' capacity
        self.arrived = 0.0  # since the last sync
        self.shed = 0.0  # since the last sync
        self.in_flight = 0.0
        self.counter = 0

    def start(self, at: float) -> None:
        self.counter += 1
        self.replicas.append(_Replica(f"r{self.counter}", at, at + self.cap.startup_seconds))

    def step(self, second: int, rps: float) -> None:
        """Serve one second of load."""
        mu, workers = self.cap.capacity_rps, self.cap.workers
        ready = [r for r in self.replicas if r.ready_at <= second]
        self.arrived += rps
        for r in self.replicas:
            if r.ready_at > second:
                r.window.append(None)
                r.loading_cpu = float(workers)
        if not ready:
            self.held += rps
            self.in_flight = 0.0
            return
        n = len(ready)
        offered = rps + self.held + self.backlog
        self.held = 0.0
        served = min(offered, n * mu)
        self.backlog = min(offered - served, n * mu * self.cap.max_queue_seconds)
        self.shed += offered - served - self.backlog
        arrival = rps / n
        rho = min(arrival / mu, _RHO_MAX)
        wait = rho / (mu * (1 - rho)) + self.backlog / n / mu
        per_replica_served = served / n
        in_flight = min(arrival, mu) * (workers / mu + wait) + self.backlog / n
        self.in_flight = in_flight * n
        cpu = workers * per_replica_served / mu
        for r in ready:
            r.window.append((cpu, in_flight, arrival, wait))

    def samples(self, now: float, period: float) -> list[ReplicaSample]:
        out = []
        for r in self.replicas:
            ready = r.ready_at <= now
            seconds = r.window[-int(period):]
            measured = [s for s in seconds if s is not None]
            report = ready and measured and now >= r.ready_at + self.cap.metrics_delay_seconds
            values: dict[str, float | None] = dict.fromkeys(
                ("cpu", "in_flight_requests", "requests_per_second", "queue_delay_seconds"))
            if report:
                k = len(seconds)
                loading = (k - len(measured)) * r.loading_cpu
                values = {
                    "cpu": (loading + sum(s[0] for s in measured)) / k,
                    "in_flight_requests": sum(s[1] for s in measured) / len(measured),
                    "requests_per_second": sum(s[2] for s in measured) / len(measured),
                    "queue_delay_seconds": sum(s[3] for s in measured) / len(measured),
                }
            out.append(ReplicaSample(
                replica=r.id, revision="sim",
                phase=ReplicaPhase.RUNNING if ready else ReplicaPhase.PENDING,
                ready=ready, started_at=r.started_at,
                ready_since=r.ready_at if ready else None, ever_ready=ready,
                window_start=now - len(seconds), cpu_request=float(self.cap.workers), **values,
            ))  # fmt: skip
        return out

    def sync(self, now: float, rps: float, period: float) -> None:
        """One autoscaler sync, then start or stop replicas as it decided."""
        demand = Demand(requests=math.ceil(self.arrived), in_flight=math.ceil(self.in_flight),
                        held=math.ceil(self.held))  # fmt: skip
        current = len(self.replicas)
        d = decide(self.spec, current, self.samples(now, period), self.state, now, demand)
        self.state, self.arrived, shed, self.shed = d.state, 0.0, self.shed, 0.0
        for r in self.replicas:
            del r.window[: -int(period)]
        if d.desired > current:
            for _ in range(d.desired - current):
                self.start(now)
        elif d.desired < current:
            # like a ReplicaSet: not-ready replicas first, then the newest
            self.replicas.sort(key=lambda r: (r.ready_at <= now, r.started_at, r.id))
            del self.replicas[: current - d.desired]
            self.replicas.sort(key=lambda r: int(r.id[1:]))
        if d.rescale:
            self.events.append(ScaleEvent(now, current, d.desired, d.events[-1].message))
        ready = sum(1 for r in self.replicas if r.ready_at <= now)
        self.rows.append(TimelineRow(now, rps, d.desired, ready, math.ceil(self.held),
                                     round(shed), _metric_values(d)))  # fmt: skip


def _metric_values(d: AutoscaleDecision) -> tuple[tuple[str, float | None], ...]:
    out: list[tuple[str, float | None]] = []
    for m in d.metrics:
        if m.metric.target.type is MetricTargetType.UTILIZATION:
            value = None if m.average_utilization is None else float(m.average_utilization)
            out.append((f"{m.metric.name} %", value))
        else:
            out.append((m.metric.name, m.average_value))
    return tuple(out)
