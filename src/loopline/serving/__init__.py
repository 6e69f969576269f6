"""The model server: Open Inference Protocol V2 plus MLflow, KServe V1 and TF Serving adapters.

Key contracts:

- ``create_app(models, options=...)`` returns a plain ASGI app; it reads no settings.
  Models arrive loaded (:class:`ServedModel` wraps a ``loopline.bundle.LoadedModel``).
- Ready (``/v2/health/ready`` 200) only after every model's warm-up inference succeeded;
  503 while warming up and after shutdown began.
- Bad input → 400 naming the field; unknown model/version → 404; body too large → 413;
  not ready or overloaded → 503 with Retry-After. No stack trace ever reaches a client.
- Adaptive batching per model (``ServedModel(batching=True)``): each caller gets only its rows.
- Prediction logs and feedback labels are Parquet segments under ``LogOptions.directory``,
  written off the request path (bounded buffer, drop-and-count); read them with
  :func:`read_prediction_logs` / :func:`read_feedback`; :func:`find_request` finds one
  request (and its feedback) by request id.
- :class:`ServeCommand` is one server process's models and options: ``to_argv``/``from_argv``
  (exact inverses), ``server_options()``, ``run(load_models)``; every launcher builds one.
- The model repository extension (``POST /v2/repository/index``, ``…/models/{m}/load``,
  ``…/unload``) loads and unloads models from a :class:`ModelSource` (a
  :class:`FolderRepository`, or the registry's in the CLI layer) given in
  ``ServerOptions.repository`` (:class:`RepositoryOptions`: source, token, the state folder
  that makes every worker converge).
- ``run_server`` runs N worker processes, each with its own SO_REUSEPORT socket on the port,
  and shuts down gracefully on SIGTERM.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopline.serving.app import ModelServerApp, create_app
    from loopline.serving.batcher import AdaptiveBatcher, Overloaded
    from loopline.serving.command import ServeCommand
    from loopline.serving.limits import HttpLimits, Phase, check_limits, overdue
    from loopline.serving.log_reader import read_feedback, read_prediction_logs
    from loopline.serving.log_search import LoggedRequest, find_request
    from loopline.serving.options import BatchingOptions, LogOptions, ServedModel, ServerOptions
    from loopline.serving.repository import (
        FolderRepository,
        LoadParameters,
        LoadSpec,
        ModelSource,
        RepositoryOptions,
        read_token,
    )
    from loopline.serving.runner import ServerHandle, run_server, serve_worker

# Imported on first use: the deploy spec reads the serving defaults (options), and the
# router and CLI must not pay for Starlette, Polars and the model-loading code to do so.
_EXPORTS = {
    "AdaptiveBatcher": "loopline.serving.batcher",
    "BatchingOptions": "loopline.serving.options",
    "FolderRepository": "loopline.serving.repository",
    "LoadParameters": "loopline.serving.repository",
    "LoadSpec": "loopline.serving.repository",
    "ModelSource": "loopline.serving.repository",
    "RepositoryOptions": "loopline.serving.repository",
    "read_token": "loopline.serving.repository",
    "HttpLimits": "loopline.serving.limits",
    "LogOptions": "loopline.serving.options",
    "Phase": "loopline.serving.limits",
    "check_limits": "loopline.serving.limits",
    "overdue": "loopline.serving.limits",
    "LoggedRequest": "loopline.serving.log_search",
    "ModelServerApp": "loopline.serving.app",
    "Overloaded": "loopline.serving.batcher",
    "ServeCommand": "loopline.serving.command",
    "ServedModel": "loopline.serving.options",
    "ServerHandle": "loopline.serving.runner",
    "ServerOptions": "loopline.serving.options",
    "create_app": "loopline.serving.app",
    "find_request": "loopline.serving.log_search",
    "read_feedback": "loopline.serving.log_reader",
    "read_prediction_logs": "loopline.serving.log_reader",
    "run_server": "loopline.serving.runner",
    "serve_worker": "loopline.serving.runner",
}

__all__ = [
    "AdaptiveBatcher",
    "BatchingOptions",
    "FolderRepository",
    "HttpLimits",
    "LoadParameters",
    "LoadSpec",
    "LogOptions",
    "LoggedRequest",
    "ModelServerApp",
    "ModelSource",
    "Overloaded",
    "Phase",
    "RepositoryOptions",
    "ServeCommand",
    "ServedModel",
    "ServerHandle",
    "ServerOptions",
    "check_limits",
    "create_app",
    "find_request",
    "overdue",
    "read_feedback",
    "read_prediction_logs",
    "read_token",
    "run_server",
    "serve_worker",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'loopline.serving' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
