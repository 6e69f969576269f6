"""Rollout strategies, one Kubernetes sync step each: RollingUpdate and Recreate."""

from loopline.deploy.strategies.recreate import rollout_recreate
from loopline.deploy.strategies.rolling import rollout_rolling

__all__ = ["rollout_recreate", "rollout_rolling"]
