"""The control plane's composition: local engine, routers, state store, registry, from a
:class:`~loopline.platform.Platform`."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.controlplane.events import EventLog
from loopline.controlplane.leadership import LEASE_SECONDS, Leadership, holder_id
from loopline.controlplane.pinning import ModelPinner
from loopline.controlplane.service import ControlPlane
from loopline.controlplane.triggers import DeploymentRollouts, TriggerOperations
from loopline.deploy.engines.local import LocalEngine
from loopline.deploy.local_routing import LocalRouting
from loopline.deploy.manager import DeploymentManager
from loopline.deploy.state import DeploymentStateStore
from loopline.platform import Platform

if TYPE_CHECKING:
    from loopline.controlplane.monitors import MonitorOperations


def open_state_store(platform: Platform) -> DeploymentStateStore:
    """The deployment state store in the metadata database (``LOOPLINE_DB_URL``)."""
    from loopline.deploy.sql_state import SqlDeploymentStateStore

    return SqlDeploymentStateStore.from_metadata(platform.metadata)


def build_controlplane(
    platform: Platform,
    *,
    store: DeploymentStateStore | None = None,
    host: str = "127.0.0.1",
    drain_timeout: float = 30.0,
    stop_grace: float = 10.0,
    graceful_timeout: float | None = None,
    autoscale_period: float = 15.0,
    trigger_interval: float = 2.0,
    monitor_interval: float = 5.0,
    lease_seconds: float = LEASE_SECONDS,
) -> ControlPlane:
    """A ControlPlane whose replicas are model-server processes on this machine (the local
    engine starts ``python -m loopline.cli.serve_process`` from each revision's template).

    Args:
        platform: settings and stores (metadata, registry).
        store: deployment state (default: the SQL store in the metadata database).
        host: loopback address replicas and routers bind to.
        drain_timeout: seconds a retiring replica may take to finish in-flight requests.
        stop_grace: seconds between SIGTERM and SIGKILL of a replica.
        graceful_timeout: the replica server's own in-flight deadline after SIGTERM (None:
            the server's default, ``loopline serve --graceful-timeout``).
        autoscale_period: seconds between autoscaler decisions (the HPA's sync period).
        trigger_interval: seconds between rounds of the trigger loop.
        monitor_interval: seconds between rounds of the monitor loop (each applied Monitor
            ticks once a round over ``$LOOPLINE_HOME/predictions``).
        lease_seconds: how long the controllers' lease lasts unrenewed: a standby on the
            same database takes over this long after the holder stopped renewing.
    """
    settings = platform.settings
    home = settings.home
    engine = LocalEngine(
        log_dir=home / "deployments" / "logs",
        host=host,
        python=sys.executable,
        prediction_log_root=home / "predictions",
        graceful_timeout=graceful_timeout,
        drain_seconds=0.0,  # the router stops sending before the replica is stopped
        log_max_bytes=settings.prediction_log_max_bytes,  # the LOOPLINE_PREDICTION_LOG_*
        log_max_age=settings.prediction_log_max_age,  # settings: for templates that set none
        log_buffer_bytes=settings.prediction_log_buffer_bytes,
        env={
            "LOOPLINE_DB_URL": settings.db_url,
            "LOOPLINE_ARTIFACT_ROOT": settings.artifact_root,
            "LOOPLINE_HOME": str(home),
        },
    )
    from concurrent.futures import ThreadPoolExecutor

    from loopline.deploy.analysis_runner import AnalysisRunner
    from loopline.deploy.template_store import SqlAnalysisTemplateStore

    engines = getattr(platform.metadata, "engine", None)
    manager = DeploymentManager(
        store=store if store is not None else open_state_store(platform),
        engine=engine,
        routing=LocalRouting(engine, stop_grace=stop_grace,
                             secret_dir=home / "deployments" / "routers"),
        host=host,
        drain_timeout=drain_timeout,
        stop_grace=stop_grace,
        templates=SqlAnalysisTemplateStore(engines) if engines is not None else None,
        analysis=AnalysisRunner(
            log_directory=home / "predictions",
            executor=ThreadPoolExecutor(max_workers=2, thread_name_prefix="analysis"),
        ),
        autoscale_period=autoscale_period,
    )
    service = ControlPlane(
        manager=manager,
        pinner=ModelPinner(registry=platform.registry, metadata=platform.metadata),
        events=EventLog(clock=time.time),
        host=host,
        leadership=_leadership(engines, home, lease_seconds) if engines is not None else None,
    )
    if engines is not None:
        service.triggers_ops = _trigger_operations(platform, service, engines, trigger_interval)
        service.monitors_ops = _monitor_operations(platform, service, engines, monitor_interval)
    return service


def build_kubernetes_controlplane(
    platform: Platform,
    *,
    store: DeploymentStateStore | None = None,
    host: str = "127.0.0.1",
    lease_seconds: float = LEASE_SECONDS,
) -> ControlPlane:
    """A ControlPlane whose deployments run on the cluster of ``platform`` (in-cluster
    service account, else the kubeconfig; :meth:`Platform.kubernetes_cluster`) in
    ``LOOPLINE_KUBERNETES_NAMESPACE``, with pods running ``LOOPLINE_KUBERNETES_IMAGE`` and
    canary weights on ``LOOPLINE_KUBERNETES_GATEWAY`` (see
    :mod:`loopline.controlplane.kubernetes`). It keeps no Triggers (their rollouts read the
    local deployment store) and no Monitors (they read the replicas' prediction logs, which
    stay in the pods).

    Raises:
        DependencyMissingError: the ``k8s`` extra (lightkube) is not installed.
        ConfigurationError: no usable service account or kubeconfig.
        InvalidInputError: ``LOOPLINE_KUBERNETES_GATEWAY`` is not ``[NS/]NAME[#LISTENER]``.
    """
    from loopline import __version__
    from loopline.controlplane.kubernetes import KubernetesControlPlane
    from loopline.deploy.engines.kubernetes.deployer import KubernetesDeployer
    from loopline.deploy.engines.kubernetes.traffic import GatewayRef
    from loopline.deploy.images import default_tag
    from loopline.deploy.template_store import SqlAnalysisTemplateStore

    settings = platform.settings
    gateway = GatewayRef.parse(settings.kubernetes_gateway) if settings.kubernetes_gateway else None
    cluster = platform.kubernetes_cluster()
    engines = getattr(platform.metadata, "engine", None)
    service = KubernetesControlPlane(
        deployer=KubernetesDeployer(cluster, settings.kubernetes_namespace or cluster.namespace),
        image=settings.kubernetes_image or default_tag(__version__),
        gateway=gateway,
        pinner=ModelPinner(registry=platform.registry, metadata=platform.metadata),
        events=EventLog(clock=time.time),
        store=store if store is not None else open_state_store(platform),
        templates=SqlAnalysisTemplateStore(engines) if engines is not None else None,
        host=host,
        leadership=_leadership(engines, settings.home, lease_seconds)
        if engines is not None else None,
    )  # fmt: skip
    return service


def _leadership(engine: Any, home: Path, lease_seconds: float) -> Leadership:
    """The controllers' lease in the metadata database: one controller per database."""
    from loopline.deploy.sql_lease import SqlLeaseStore

    description = f"pid {os.getpid()} on {socket.gethostname()}, LOOPLINE_HOME {home}"
    return Leadership(SqlLeaseStore(engine), description, ttl=lease_seconds,
                      holder=holder_id(home))  # fmt: skip


def _trigger_operations(
    platform: Platform, service: ControlPlane, engine: Any, interval: float
) -> TriggerOperations:
    """Triggers in the metadata database; runs as child processes logging under
    ``$LOOPLINE_HOME/triggers/logs``; rollouts through ``service``."""
    from loopline.triggers import ProcessLauncher, SqlTriggerStore, TriggerController

    settings = platform.settings
    store = SqlTriggerStore(engine)
    launcher = ProcessLauncher(
        log_dir=settings.home / "triggers" / "logs",
        env={
            "LOOPLINE_DB_URL": settings.db_url,
            "LOOPLINE_ARTIFACT_ROOT": settings.artifact_root,
            "LOOPLINE_HOME": str(settings.home),
        },
    )
    controller = TriggerController(
        store=store,
        metadata=platform.metadata,
        registry=platform.registry,
        launcher=launcher,
        rollouts=DeploymentRollouts(service),
        clock=time.time,
    )
    return TriggerOperations(store, controller, interval)


def _monitor_operations(
    platform: Platform, service: ControlPlane, engine: Any, interval: float
) -> MonitorOperations:
    """Monitors in the metadata database, reading the replicas' prediction logs."""
    from loopline.controlplane.monitors import MonitorOperations
    from loopline.monitor import SqlMonitorStore

    return MonitorOperations(
        SqlMonitorStore(engine),
        deployments=service.store,
        metadata=platform.metadata,
        registry=platform.registry,
        artifacts=platform.artifacts,
        log_root=platform.settings.home / "predictions",
        interval=interval,
        trust=platform.trust,
    )
