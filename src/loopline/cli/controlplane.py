"""``loopline controlplane`` (alias ``up``): the API server plus the deployment controllers."""

from __future__ import annotations

import logging

import click

from loopline.cli.output import err_console, handle_errors
from loopline.settings import Settings, redact_url


@click.command("controlplane")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind. Anything but loopback exposes the API: reads then "
                   "need the token too.")  # fmt: skip
@click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port; 0 picks a free one (recorded in endpoint.json).")  # fmt: skip
@click.option("--sync-interval", default=0.25, show_default=True,
              type=click.FloatRange(0.05, 10),
              help="Seconds between controller syncs.")  # fmt: skip
@click.option("--engine", type=click.Choice(["local", "kubernetes"]), default=None,
              help="Where deployments run: local processes, or the Kubernetes cluster of the "
                   "in-cluster service account / kubeconfig. Default: LOOPLINE_ENGINE, else "
                   "local.")  # fmt: skip
@handle_errors
def controlplane(host: str, port: int, sync_interval: float, engine: str | None) -> None:
    """Run the control plane: REST API (OpenAPI at /openapi.json) and deployment controllers.

    State lives in the metadata database (LOOPLINE_DB_URL). SIGTERM stops the API and the
    controllers but leaves replicas and routers serving; the next start re-adopts them. With
    --engine kubernetes the deployments, and their state, live on the cluster
    (docs/kubernetes.md).
    """
    from loopline.controlplane.build import build_controlplane, build_kubernetes_controlplane
    from loopline.controlplane.files import ControlPlaneFiles
    from loopline.controlplane.server import is_loopback, run_controlplane
    from loopline.platform import Platform
    from loopline.ui import create_console

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per router call otherwise
    if not is_loopback(host):
        err_console.print(
            f"[yellow]warning:[/] binding {host}: the control-plane API is reachable from other "
            "hosts; every request then needs the bearer token, and traffic is not encrypted. "
            "Clients must name this address, or a host listed in LOOPLINE_CONTROLPLANE_HOSTS."
        )
    with Platform.from_env() as platform:
        files = ControlPlaneFiles(platform.settings.home)
        if platform.settings.controlplane_token:
            files.install_token(platform.settings.controlplane_token)
        if (engine or platform.settings.engine) == "kubernetes":
            service = build_kubernetes_controlplane(platform)
        else:
            service = build_controlplane(platform)

        def started(url: str) -> None:
            err_console.print(started_message(url, platform.settings))

        run_controlplane(
            service, files, host=host, port=port, sync_interval=sync_interval,
            on_started=started, allowed_hosts=platform.settings.controlplane_hosts,
            console=lambda s, token: create_console(s, token=token),
        )  # fmt: skip


def started_message(url: str, settings: Settings) -> str:
    """The line a started control plane prints (and so writes to controlplane.log): its URL
    and its database, never the database's password."""
    return f"control plane serving at {url} (state: {redact_url(settings.db_url)})"


@click.command("down")
@click.option("--delete-deployments", is_flag=True,
              help="First delete every deployment, stopping its replicas and router.")  # fmt: skip
@click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(1, 600),
              help="Seconds to wait for the control plane to exit.")  # fmt: skip
@handle_errors
def down(delete_deployments: bool, timeout: float) -> None:
    """Stop the local control plane (SIGTERM). Replicas and routers keep serving unless
    --delete-deployments is given; the next start re-adopts them."""
    import os
    import signal
    import time

    from loopline.controlplane.client import ControlPlaneClient
    from loopline.controlplane.files import ControlPlaneFiles
    from loopline.errors import StepTimeoutError
    from loopline.settings import Settings

    files = ControlPlaneFiles(Settings.from_env().home)
    endpoint = files.live_endpoint()
    if endpoint is None:
        err_console.print("no control plane is running here; nothing to stop")
        return
    if delete_deployments:
        with ControlPlaneClient(endpoint.url, token=files.read_token()) as client:
            for d in client.list_deployments():
                name = d.metadata.name
                client.delete(name)
                err_console.print(f"deleted deployment {name}")
    os.kill(endpoint.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    delay = 0.05
    while endpoint.is_alive():
        if time.monotonic() >= deadline:
            raise StepTimeoutError(
                f"The control plane (pid {endpoint.pid}) did not exit within {timeout:.0f} s "
                f"of SIGTERM; see {files.log_path}, or stop it with kill -9 {endpoint.pid}."
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
    err_console.print(f"stopped the control plane (pid {endpoint.pid})")
