"""CPU seconds of process sessions, read from /proc for real processes."""

from __future__ import annotations

import os
import subprocess
import sys

from loopline.deploy.engines.proc import session_cpu_seconds
from loopline.testing.artifacts import wait_for


def test_a_session_counts_the_cpu_of_every_process_in_it() -> None:
    # A session leader that starts a busy child in the same session.
    code = (
        "import subprocess, sys, time\n"
        "c = subprocess.Popen([sys.executable, '-c', 'while True: pass'])\n"
        "time.sleep(60)\n"
    )
    leader = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        wait_for(
            lambda: session_cpu_seconds([leader.pid]).get(leader.pid, 0.0) >= 0.3,
            timeout=30,
            what="the busy child's CPU to show in its session",
        )
        assert os.getsid(leader.pid) == leader.pid
        assert session_cpu_seconds([os.getsid(0)]).get(leader.pid) is None
    finally:
        os.killpg(leader.pid, 9)
        leader.wait(timeout=10)


def test_sessions_without_live_processes_are_absent() -> None:
    assert session_cpu_seconds([]) == {}
    assert session_cpu_seconds([2**22 + 12345]) == {}
