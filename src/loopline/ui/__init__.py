"""The web console, served by the control plane at ``/ui``: the third way (after YAML and the
CLI) to see and drive deployments, the registry and pipeline runs, and to read monitors and
lineage.

Key contracts:

- **Server-rendered.** Starlette routes and Jinja2 templates; htmx 2 for forms and swaps and
  its SSE extension for live updates, vendored under ``static/vendor`` with ``VENDOR.json``
  (refreshed by ``scripts/vendor_ui.py``); no Node at build, CI or run time; works offline.
- **Same operations as the API.** Every read and action goes through the
  :class:`~loopline.controlplane.ControlPlane`, the registry and the run history, the calls
  the API's routes and the CLI make; the console holds no business logic of its own.
- **Access.** Reads follow the API's rule (tokenless only for a loopback client on a loopback
  ``Host``, otherwise a session); actions need a session signed in with the control plane's
  token (an HttpOnly, SameSite=Strict cookie) and a CSRF token; without one the console is
  read-only. CSP ``script-src 'self'``: no inline scripts.
- **Deep links.** Every screen's state is in its URL; lists are pages of 50 rows with keyset
  paging (``?after=`` the last key shown).

The console is mounted by ``create_app(service, token=..., console=create_console(...))``; it
imports :mod:`loopline.controlplane`, never the other way round.
"""

from loopline.ui.app import create_console

__all__ = ["create_console"]
