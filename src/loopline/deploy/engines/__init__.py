"""Engines run replica and router processes.

``base.DeployEngine`` is the contract (capabilities as class data); ``local.LocalEngine``
runs detached local processes. A Kubernetes engine will implement the same contract.
"""

from loopline.deploy.engines.base import DeployEngine, ProcessExit, ProcessHandle
from loopline.deploy.engines.local import LocalEngine

__all__ = ["DeployEngine", "LocalEngine", "ProcessExit", "ProcessHandle"]
