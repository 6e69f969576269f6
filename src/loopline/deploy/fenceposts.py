"""maxSurge / maxUnavailable arithmetic, exactly as Kubernetes ``deployment/util``."""

from __future__ import annotations

import math

from loopline.deploy.spec import DeploymentSpec, IntOrPercent, StrategyType


def _scaled(value: IntOrPercent, total: int, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    exact = total * int(value[:-1]) / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def resolve_fenceposts(
    max_surge: IntOrPercent, max_unavailable: IntOrPercent, desired: int
) -> tuple[int, int]:
    """``(surge, unavailable)``: surge rounds up, unavailable down; both 0 → unavailable 1.

    >>> resolve_fenceposts("25%", "25%", 3)
    (1, 0)
    """
    surge = _scaled(max_surge, desired, round_up=True)
    unavailable = _scaled(max_unavailable, desired, round_up=False)
    if surge == 0 and unavailable == 0:
        # Without this a 2-replica deployment with 1%/0% could never make progress.
        unavailable = 1
    return surge, unavailable


def max_surge(spec: DeploymentSpec) -> int:
    """Replicas allowed above ``spec.replicas`` during a rollout (0 for Recreate)."""
    if spec.strategy.type is not StrategyType.ROLLING_UPDATE:
        return 0
    surge, _ = resolve_fenceposts(
        spec.strategy.max_surge, spec.strategy.max_unavailable, spec.replicas
    )
    return surge


def max_unavailable(spec: DeploymentSpec) -> int:
    """Replicas allowed below ``spec.replicas`` (0 for Recreate or 0 replicas)."""
    if spec.strategy.type is not StrategyType.ROLLING_UPDATE or spec.replicas == 0:
        return 0
    _, unavailable = resolve_fenceposts(
        spec.strategy.max_surge, spec.strategy.max_unavailable, spec.replicas
    )
    return min(unavailable, spec.replicas)


def round_half_away(value: float) -> int:
    """Go's ``math.Round`` (half away from zero), not Python's banker's rounding."""
    return math.floor(value + 0.5) if value >= 0 else -math.floor(-value + 0.5)
