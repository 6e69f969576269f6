"""The face of ``loopline.serving``: what other packages may import from it."""

from __future__ import annotations

import loopline.serving


def test_the_serving_package_exports_exactly_its_public_names() -> None:
    assert sorted(loopline.serving.__all__) == [
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
    assert all(hasattr(loopline.serving, name) for name in loopline.serving.__all__)
