"""die_with_parent: a worker whose parent is SIGKILLed gets SIGTERM instead of living on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from loopline.lifetime import die_with_parent

PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(__import__("os").getpid())])
print(child.pid, flush=True)
time.sleep(60)
"""

CHILD = """
import sys, time
from loopline.lifetime import die_with_parent
assert die_with_parent(int(sys.argv[1]))
time.sleep(60)
"""


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        stat = Path(f"/proc/{pid}/stat")
        if not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return True
        time.sleep(0.05)
    return False


def test_a_child_gets_sigterm_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILD], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        time.sleep(1.0)  # let the child make its request
        assert not _gone(child, within=0.1)
        parent.kill()
        parent.wait(10)
        assert _gone(child, within=10), "the child outlived its SIGKILLed parent"
    finally:
        parent.kill()
        if parent.stdout is not None:
            parent.stdout.close()


def test_a_parent_already_gone_means_the_signal_comes_at_once() -> None:
    received: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda sig, frame: received.append(sig))
    try:
        assert die_with_parent(os.getppid() + 999_999, signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            time.sleep(0.01)
        assert received == [signal.SIGUSR1]
    finally:
        die_with_parent(os.getppid(), 0)  # signal 0: clear the request for this test process
        signal.signal(signal.SIGUSR1, previous)
