"""Which served model a request path names.

``/v2/models/{m}[/versions/{v}]/{rest}`` (Open Inference Protocol V2) and
``/v1/models/{m}[/versions/{v}|/labels/{l}][:verb]`` (KServe V1, TF Serving) resolve to an
entry of the worker's :class:`~loopline.serving.model_table.ModelTable` and what follows the
model; an unknown model or version is a 404 naming it. Both the ASGI app and the
connection's direct inference path route with these, so they agree on every path.
"""

from __future__ import annotations

from loopline.errors import NotFoundError
from loopline.serving.http import HttpError
from loopline.serving.model_table import Entry, ModelTable

V2_MODELS = "/v2/models/"
V1_MODELS = "/v1/models/"


def v2_entry(table: ModelTable, path: str) -> tuple[Entry, str]:
    """The entry named by V2 ``path`` (which starts with ``/v2/models/``) and the rest of
    the path after the model (``""``, ``"ready"``, ``"infer"``, …).

    Raises:
        HttpError: 404, no such model or version.
    """
    parts = path[len(V2_MODELS) :].split("/")
    version = None
    if len(parts) >= 3 and parts[1] == "versions":
        version = parts[2]
        rest = "/".join(parts[3:])
    else:
        rest = "/".join(parts[1:])
    try:
        return table.get(parts[0], version), rest
    except NotFoundError as exc:
        raise HttpError(404, str(exc)) from exc


def v1_entry(table: ModelTable, path: str) -> tuple[Entry, str]:
    """The entry named by V1 ``path`` (which starts with ``/v1/models/``) and its verb
    (``"predict"`` for ``…:predict``, ``""`` for none).

    Raises:
        HttpError: 404, no such model, version or endpoint.
    """
    tail = path[len(V1_MODELS) :]
    tail, colon, verb = tail.partition(":")
    parts = tail.split("/")
    version = None
    if len(parts) == 3 and parts[1] in ("versions", "labels"):
        version = parts[2]
    elif len(parts) != 1:
        raise HttpError(404, f"No such endpoint {path}.")
    try:
        return table.get(parts[0], version), verb if colon else ""
    except NotFoundError as exc:
        raise HttpError(404, str(exc)) from exc


__all__ = ["V1_MODELS", "V2_MODELS", "v1_entry", "v2_entry"]
