"""The HTTP face of the model repository extension: ``POST /v2/repository/…``.

``POST /v2/repository/index`` answers the index of the worker's
:class:`~loopline.serving.repository_control.RepositoryControl`;
``POST /v2/repository/models/NAME/load`` and ``…/unload`` check the repository token, read
the optional parameters and run the mutation; its errors become HTTP statuses (400 bad body
or parameter, 401 no or wrong token, 403 mutations off, 404 unknown model or route, 503
workers not converged in time, 500 a failure of the source, with an error reference).
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import orjson

from loopline.errors import InvalidInputError, LooplineError, NotFoundError, StepTimeoutError
from loopline.serving.http import HttpError, Receive, Scope, Send, respond
from loopline.serving.repository_control import READY, UNAVAILABLE, RepositoryControl, index_row
from loopline.serving.repository_requests import (
    index_ready,
    load_parameters,
    read_object,
    unload_parameters,
)

log = logging.getLogger(__name__)

_PREFIX = "/v2/repository/"
_MODELS = "/v2/repository/models/"
_ACTIONS = ("load", "unload")


async def handle_repository(
    control: RepositoryControl, path: str, scope: Scope, receive: Receive, send: Send
) -> None:
    """Answer ``POST /v2/repository/…`` on ``control``.

    Raises:
        HttpError: 400 bad body, 401 no or wrong token, 403 mutations off, 404 unknown
            model or route, 413 body too large, 503 workers not converged in time.
    """
    limit = control.options.max_body_bytes
    if path == _PREFIX + "index":
        body = await read_object(scope, receive, limit)
        ready = index_ready(body)
        names = await asyncio.to_thread(control.source_names)
        return await respond(send, 200, orjson.dumps(control.index(names, ready_only=ready)))
    name, _, action = path[len(_MODELS) :].rpartition("/")
    if not path.startswith(_MODELS) or not name or "/" in name or action not in _ACTIONS:
        raise HttpError(
            404,
            f"No such endpoint POST {path}; the repository has POST /v2/repository/index "
            "and POST /v2/repository/models/NAME/load or /unload.",
        )
    _authorize(control, scope, action)
    body = await read_object(scope, receive, limit)
    if action == "load":
        parameters = load_parameters(body)
    else:
        unload_parameters(body)
    try:
        if action == "load":
            spec = await control.load(name, parameters)
            answer = index_row(spec.name, spec.version, READY, "")
        else:
            await control.unload(name)
            answer = index_row(name, control.unloaded_version(name), UNAVAILABLE, "unloaded")
    except NotFoundError as exc:
        raise HttpError(404, str(exc)) from None
    except InvalidInputError as exc:
        raise HttpError(400, str(exc)) from None
    except StepTimeoutError as exc:
        raise HttpError(503, str(exc), [(b"retry-after", b"1")]) from None
    except LooplineError as exc:
        raise HttpError(500, str(exc)) from None
    except Exception:
        ref = uuid.uuid4().hex[:12]
        log.exception("Model %s of %r failed (error ref %s).", action, name, ref)
        raise HttpError(
            500,
            f"Internal error while {action}ing model {name!r} (ref {ref}); see the server log.",
        ) from None
    await respond(send, 200, orjson.dumps(answer))


def _authorize(control: RepositoryControl, scope: Scope, action: str) -> None:
    options = control.options
    if not options.mutable:
        raise HttpError(
            403,
            f"Model {action} is off on this server: start it with --repository-token-file "
            "FILE (then send Authorization: Bearer <token>) or, where every local user is "
            "trusted, --repository-allow-unauthenticated.",
        )
    header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
    if not options.authorized(header):
        raise HttpError(
            401,
            f"Model {action} needs the server's repository token (Authorization: Bearer "
            "<token>, the token in the file given to --repository-token-file).",
            [(b"www-authenticate", b"Bearer")],
        )


__all__ = ["handle_repository"]
