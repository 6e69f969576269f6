"""An S3 endpoint for tests: moto's standalone server, a real process on 127.0.0.1.

``MotoS3Server`` starts ``python -m moto.server`` on a free port, waits until it answers,
and stops it by its pid. Clients reach it the way they reach any S3-compatible store: through
the standard AWS variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, …) that botocore,
and so s3fs, read — :meth:`MotoS3Server.environ` gives them::

    with MotoS3Server() as server:
        server.create_bucket("artifacts")
        env = {**os.environ, **server.environ()}
        subprocess.run(["loopline", "run", "pipeline.py"], env=env | {
            "LOOPLINE_ARTIFACT_ROOT": "s3://artifacts/prefix"})

moto keeps its buckets in memory: nothing is written outside the log file, and everything
is gone once the server stops. It needs ``moto[server]`` (in loopline's ``dev`` extra).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

#: The credentials moto accepts (it checks none); never real ones.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
REGION = "us-east-1"


def moto_missing_reason() -> str | None:
    """Why moto's server cannot run here, or None when it can."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        return "moto's S3 server is not installed; pip install 'moto[server]' (in loopline[dev])"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class MotoS3Server:
    """moto's S3 server in a child process on ``127.0.0.1`` (tests only).

    Args:
        startup_timeout: seconds to wait for the server to answer before giving up.
    """

    def __init__(self, *, startup_timeout: float = 60.0) -> None:
        self.startup_timeout = startup_timeout
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT`` (the server must be started)."""
        if self._proc is None:
            raise RuntimeError("MotoS3Server is not running; call start() first.")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The server process's pid (the server must be started)."""
        if self._proc is None:
            raise RuntimeError("MotoS3Server is not running; call start() first.")
        return self._proc.pid

    def environ(self) -> dict[str, str]:
        """The standard AWS variables that point any botocore client at this server, and
        only at it: no profile, config file or instance metadata can add real credentials."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            **FAKE_CREDENTIALS,
        }

    def start(self) -> None:
        """Start the server on a free port and wait until it answers.

        Raises:
            RuntimeError: moto is missing, or the server did not come up (its log is quoted).
        """
        reason = moto_missing_reason()
        if reason is not None:
            raise RuntimeError(reason)
        fd, log = tempfile.mkstemp(prefix="loopline-moto-", suffix=".log")
        os.close(fd)
        self._log = Path(log)
        for _ in range(3):  # another process may take the free port before moto binds it
            self.port = _free_port()
            with open(self._log, "wb") as out:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env={**os.environ, "PYTHONWARNINGS": "ignore"},
                )
            if self._wait_ready():
                return
            self._terminate()
        text = self._log.read_text(errors="replace")[-2000:]
        self._log.unlink(missing_ok=True)
        raise RuntimeError(f"moto's S3 server did not start on 127.0.0.1; its log:\n{text}")

    def _wait_ready(self) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.02
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=5):
                    return True
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        return False

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name`` (moto checks no signature, so a plain PUT does)."""
        request = urllib.request.Request(f"{self.endpoint_url}/{name}", method="PUT")
        try:
            with urllib.request.urlopen(request, timeout=30):
                pass
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise RuntimeError(
                f"Creating bucket {name!r} answered {exc.code}: {detail} (bucket names are 3-63 "
                "lower-case letters, digits, '.' and '-')."
            ) from None

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s) and remove its log."""
        self._terminate()
        if self._log is not None:
            self._log.unlink(missing_ok=True)
            self._log = None

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def __enter__(self) -> MotoS3Server:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
