"""The engine contract: start, watch, probe and stop replica and router processes."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from loopline.deploy.spec import Template


@dataclass(frozen=True, slots=True)
class ProcessHandle:
    """Identifies one started process: pid plus its start time, the port it listens on."""

    pid: int
    process_start: int  # clock ticks since boot (/proc/<pid>/stat field 22)
    port: int
    log_path: str | None = None


@dataclass(frozen=True, slots=True)
class ProcessExit:
    """A process that is gone; ``code`` is None when it was not our child (re-adopted)."""

    code: int | None


class DeployEngine(abc.ABC):
    """Runs the processes of deployments. Capabilities are class data.

    Implementations must never mistake a reused pid for a replica: a handle whose pid now
    belongs to a process with another start time is reported as exited.
    """

    #: processes outlive the control plane and can be re-adopted by handle
    survives_control_plane: ClassVar[bool] = False
    #: :meth:`probe_ready` performs a real readiness check (else "alive" means ready)
    probes_readiness: ClassVar[bool] = False

    @abc.abstractmethod
    def start_replica(self, replica_id: str, template: Template) -> ProcessHandle:
        """Launch a replica of ``template`` on a free port; returns at once (not yet ready).

        Raises:
            BackendError: the process could not be launched at all.
        """

    @abc.abstractmethod
    def start_router(
        self, deployment: str, port: int, admin_port: int, workers: int = 1,
        preview_port: int = 0, *, admin_secret_file: Path,
    ) -> ProcessHandle:  # fmt: skip
        """Launch the deployment's router on ``port`` (0: any free port); its admin API
        listens on loopback ``admin_port`` (chosen by the caller, never 0). Returns once the
        admin API answers. ``workers`` > 1 runs that many proxy processes on the port.
        ``preview_port`` > 0: the router also serves the preview revision there (0: no
        preview port). ``admin_secret_file`` (mode 0600, written by the caller) holds the
        secret the router's admin API asks of every change; its path, never the secret, is
        on the router's command line.

        Raises:
            BackendError: the router could not be launched or did not come up in time.
        """

    @abc.abstractmethod
    def poll(self, handle: ProcessHandle) -> ProcessExit | None:
        """None while the process runs; how it ended otherwise."""

    @abc.abstractmethod
    def probe_ready(self, handle: ProcessHandle, timeout: float) -> bool:
        """One readiness probe, bounded by ``timeout`` seconds; False on any failure."""

    @abc.abstractmethod
    def cpu_seconds(self, pids: Sequence[int]) -> dict[int, float]:
        """CPU seconds (user + system) used so far by each replica process, its workers
        included (the autoscaler's CPU metric); processes that are gone are absent."""

    @abc.abstractmethod
    def stop(self, handle: ProcessHandle, grace: float) -> ProcessExit:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL; returns how it ended."""

    def release_replica(self, replica_id: str) -> None:  # noqa: B027 - optional: a no-op
        """Replica ``replica_id`` is gone for good (retired, its deployment deleted, or its
        start undone) and its process stopped: remove what the engine keeps for it (the local
        engine: its working directory). A replica restarted in place is not released, and
        keeps it. Engines that keep nothing per replica keep this default, which does nothing.

        Raises:
            BackendError: what the engine kept could not be removed.
        """
