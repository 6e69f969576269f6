"""The router: one stable port per deployment in front of its ready replicas.

Run as its own process (``python -m loopline.deploy.router``) in its own session, so it
survives the control plane. Driven through a loopback admin API whose changes need the
router's secret (see :mod:`loopline.deploy.router.admin`,
:class:`~loopline.deploy.router.client.RouterAdminClient`); its clients are held to
:class:`~loopline.deploy.router.limits.RouterLimits`.
"""

from loopline.deploy.router.balancer import BackendState, Balancer
from loopline.deploy.router.client import RouterAdminClient
from loopline.deploy.router.proxy import Router

__all__ = ["BackendState", "Balancer", "Router", "RouterAdminClient"]
