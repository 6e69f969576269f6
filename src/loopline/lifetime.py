"""Process lifetime: worker processes that must not outlive the process that started them.

A model server's or router's supervisor forwards SIGTERM to its workers and restarts them;
if the supervisor itself is killed with SIGKILL (``kill -9``, the OOM killer), nothing would
stop its workers, which would keep answering on the shared port forever. Workers call
:func:`die_with_parent` first thing: the kernel then sends them SIGTERM when the supervisor
dies, and they shut down gracefully (in-flight requests are answered).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int, sig: int = signal.SIGTERM) -> bool:
    """Have ``sig`` sent to this process when ``parent`` (its parent's pid) exits.

    If ``parent`` is already gone (this process was re-parented before the call), ``sig`` is
    sent now. Returns False where the kernel offers no such request (non-Linux).
    """
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return False
    if os.getppid() != parent:
        os.kill(os.getpid(), sig)
    return True
