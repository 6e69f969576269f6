"""How deployment verbs reach the control plane: discover it, or start it (with a message)."""

from __future__ import annotations

import os
import sys

from loopline.controlplane.client import ControlPlaneClient
from loopline.controlplane.discovery import locate, start_detached
from loopline.controlplane.files import ControlPlaneFiles
from loopline.errors import ConfigurationError
from loopline.settings import Settings

START_DEADLINE = 60.0


def connect(settings: Settings | None = None) -> ControlPlaneClient:
    """A client for the control plane; starts a local one when none runs.

    ``LOOPLINE_CONTROLPLANE_URL`` overrides discovery (nothing is started then); the token is
    read from ``$LOOPLINE_HOME/controlplane/token`` when present.
    """
    from loopline.cli.output import err_console

    settings = settings or Settings.from_env()
    files = ControlPlaneFiles(settings.home)
    if settings.controlplane_url:
        return ControlPlaneClient(settings.controlplane_url, token=_token(files))
    endpoint = locate(files)
    if endpoint is not None:
        return ControlPlaneClient(endpoint.url, token=_token(files))
    env = dict(os.environ)
    # The child resolves nothing relative to its own directory: pass resolved settings.
    env["LOOPLINE_DB_URL"] = settings.db_url
    env["LOOPLINE_ARTIFACT_ROOT"] = settings.artifact_root
    env["LOOPLINE_HOME"] = str(settings.home)
    located = start_detached(
        files,
        [sys.executable, "-m", "loopline.cli", "controlplane"],
        env,
        deadline=START_DEADLINE,
        notify=lambda message: err_console.print(message),
    )
    return ControlPlaneClient(located.url, token=_token(files))


def _token(files: ControlPlaneFiles) -> str | None:
    try:
        return files.read_token()
    except ConfigurationError:
        if files.token_path.exists():
            raise
        return None
