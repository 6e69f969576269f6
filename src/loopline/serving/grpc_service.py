"""KServe's ``inference.GRPCInferenceService`` on the model server's inference core.

:class:`InferenceService` holds what each RPC of ``grpc_predict_v2.proto`` means for a
:class:`~loopline.serving.app.ModelServerApp`: the same model table, readiness, batching
queues, prediction log and metrics (``protocol="grpc"``) as HTTP. Its methods take the
parsed request and return the serialized response, or raise :class:`Refused` with the status
to answer; they run on the app's event loop (:mod:`loopline.serving.grpc_server` carries the
calls there from its own thread and turns a :class:`Refused` into the call's status).

Status codes, as the Open Inference Protocol maps them:

- INVALID_ARGUMENT: a malformed request or one the model rejects; the message names the field.
- NOT_FOUND: an unknown model, or a version or alias it does not have.
- UNAVAILABLE: the model is not ready, or overloaded, or a repository change has not
  reached every worker in time (trailing metadata ``retry-after``).
- PERMISSION_DENIED: ``RepositoryModelLoad``/``Unload`` on a server whose repository
  mutations are off; UNAUTHENTICATED: without the repository token (metadata
  ``authorization: Bearer <token>``), as HTTP's 403 and 401.
- INTERNAL: a bug in a model, with an error reference for the server log; no stack trace.

``RepositoryModelLoad`` and ``RepositoryModelUnload`` (KServe's messages) are the HTTP model
repository extension's load and unload (:mod:`loopline.serving.repository_control`): the
source's default version, every worker converged before the answer.

The ``code`` label of ``loopline_requests_total`` is the HTTP status the same outcome has
over HTTP (OK 200, INVALID_ARGUMENT 400, NOT_FOUND 404, UNAVAILABLE 503, INTERNAL 500, a
cancelled call 499), so one query counts errors over every protocol.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from loopline import __version__
from loopline.errors import (
    InvalidInputError,
    LooplineError,
    NotFoundError,
    StepTimeoutError,
)
from loopline.serving import grpc_predict_v2_pb2 as pb
from loopline.serving import protocols
from loopline.serving.batcher import Overloaded
from loopline.serving.grpc_tensors import decode_infer_request, encode_outputs
from loopline.serving.repository import LoadParameters
from loopline.serving.typed_batch import typed_batch

if TYPE_CHECKING:
    from loopline.serving.app import ModelServerApp
    from loopline.serving.model_table import Entry

log = logging.getLogger(__name__)

#: The Open Inference Protocol extensions the gRPC face supports.
EXTENSIONS = ("model_repository", "model_repository_versions")

OK, INVALID, UNAUTHENTICATED, DENIED, NOT_FOUND = 200, 400, 401, 403, 404
UNAVAILABLE, INTERNAL, CANCELLED = 503, 500, 499
#: The gRPC status (a ``grpc.StatusCode`` name) of each HTTP-equivalent code.
STATUS = {
    INVALID: "INVALID_ARGUMENT",
    UNAUTHENTICATED: "UNAUTHENTICATED",
    DENIED: "PERMISSION_DENIED",
    NOT_FOUND: "NOT_FOUND",
    UNAVAILABLE: "UNAVAILABLE",
    INTERNAL: "INTERNAL",
}

T = TypeVar("T")


class Refused(Exception):
    """An RPC answered with a non-OK status: ``http`` is its HTTP equivalent (a key of
    :data:`STATUS`), ``retry_after`` the seconds for the ``retry-after`` trailing metadata."""

    def __init__(self, http: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.http = http
        self.retry_after = retry_after


class InferenceService:
    """The RPCs of one worker's :class:`ModelServerApp` (see the module docstring); every
    method runs on the app's event loop."""

    def __init__(self, app: ModelServerApp) -> None:
        self.app = app

    # ------------------------------------------------------------------ health
    async def server_live(self, request: Any) -> bytes:
        return bytes(pb.ServerLiveResponse(live=True).SerializeToString())

    async def server_ready(self, request: Any) -> bytes:
        return bytes(pb.ServerReadyResponse(ready=self.app.ready).SerializeToString())

    async def model_ready(self, request: Any) -> bytes:
        entry = self._entry(request.name, request.version, "name")
        ready = entry.ready and not self.app.shutting_down
        return bytes(pb.ModelReadyResponse(ready=ready).SerializeToString())

    # ---------------------------------------------------------------- metadata
    async def server_metadata(self, request: Any) -> bytes:
        response = pb.ServerMetadataResponse(
            name=self.app.options.server_name, version=__version__, extensions=EXTENSIONS
        )
        return bytes(response.SerializeToString())

    async def model_metadata(self, request: Any) -> bytes:
        entry = self._entry(request.name, request.version, "name")
        name = entry.served.name
        # The HTTP document, so both faces always describe a model the same way.
        doc = orjson.loads(
            protocols.v2_metadata(name, self.app.table.versions(name), entry.served.model.signature)
        )
        response = pb.ModelMetadataResponse(
            name=doc["name"], versions=doc["versions"], platform=doc["platform"]
        )
        for side in ("inputs", "outputs"):
            for tensor in doc[side]:
                getattr(response, side).add(
                    name=tensor["name"], datatype=tensor["datatype"], shape=tensor["shape"]
                )
        return bytes(response.SerializeToString())

    # --------------------------------------------------------------- repository
    async def repository_model_load(self, request: Any, authorization: str | None) -> bytes:
        name = self._repository_name(request.model_name, "load", authorization)
        spec = await _repository(self.app.repository.load(name, LoadParameters()))
        response = pb.RepositoryModelLoadResponse(model_name=spec.name, isLoaded=True)
        return bytes(response.SerializeToString())

    async def repository_model_unload(self, request: Any, authorization: str | None) -> bytes:
        name = self._repository_name(request.model_name, "unload", authorization)
        await _repository(self.app.repository.unload(name))
        response = pb.RepositoryModelUnloadResponse(model_name=name, isUnloaded=True)
        return bytes(response.SerializeToString())

    def _repository_name(self, name: str, action: str, authorization: str | None) -> str:
        """``name`` once the caller may ``action`` models (as HTTP: 403 off, 401 token)."""
        options = self.app.repository.options
        if not options.mutable:
            raise Refused(
                DENIED,
                f"Model {action} is off on this server: start it with --repository-token-file "
                "FILE (then send the metadata authorization: Bearer <token>) or, where every "
                "local user is trusted, --repository-allow-unauthenticated.",
            )
        header = None if authorization is None else authorization.encode("latin-1", "replace")
        if not options.authorized(header):
            raise Refused(
                UNAUTHENTICATED,
                f"Model {action} needs the server's repository token (metadata authorization: "
                "Bearer <token>, the token in the file given to --repository-token-file).",
            )
        if not name:
            raise Refused(INVALID, "Field 'model_name' must name a model.")
        return name

    # ---------------------------------------------------------------- inference
    async def model_infer(self, request: Any) -> bytes:
        entry = self._entry(request.model_name, request.model_version, "model_name")
        with entry:  # counted in flight: an unload waits for it
            start = time.perf_counter()
            metrics = self.app.metrics
            labels = entry.labels
            metrics.in_flight.inc(labels)
            status = INTERNAL
            try:
                payload = await self._infer(entry, request)
                status = OK
                return payload
            except Refused as exc:
                status = exc.http
                raise
            except InvalidInputError as exc:
                status = INVALID
                raise Refused(INVALID, str(exc)) from None
            except Overloaded as exc:
                status = UNAVAILABLE
                raise Refused(UNAVAILABLE, str(exc), exc.retry_after) from None
            except (ValueError, TypeError) as exc:  # the estimator rejected the values
                status = INVALID
                raise Refused(INVALID, f"The model rejected the input: {exc}") from None
            except asyncio.CancelledError:
                status = CANCELLED  # the client went away, or its deadline passed
                raise
            except Exception:
                ref = uuid.uuid4().hex[:12]
                log.exception("Prediction failed (error ref %s).", ref)
                message = f"Internal error while predicting (ref {ref}); see the server log."
                raise Refused(INTERNAL, message) from None
            finally:
                metrics.in_flight.inc(labels, -1.0)
                metrics.requests.inc((*labels, "grpc", str(status)))
                metrics.latency.observe(labels, time.perf_counter() - start)

    async def _infer(self, entry: Entry, request: Any) -> bytes:
        served = entry.served
        if not entry.ready:  # shutting down still answers what reached us
            raise Refused(
                UNAVAILABLE, f"Model {served.name!r} version {served.version} is not ready.", 1
            )
        signature = served.model.signature
        arrays, wanted = decode_infer_request(request, signature)
        rid = request.id
        if rid:
            protocols.check_request_id(rid, "Field 'id'")
        batch, rows = typed_batch(signature, arrays)
        outputs = await self.app.predict(entry, batch, rows)
        if not rid:
            rid = uuid.uuid4().hex
        response = pb.ModelInferResponse(
            model_name=served.name, model_version=served.version, id=rid
        )
        for key, value in request.parameters.items():
            response.parameters[key].CopyFrom(value)
        shown = {k: outputs[k] for k in wanted} if wanted else outputs
        encode_outputs(response, shown, signature, raw=bool(request.raw_input_contents))
        self.app.log_prediction(rid, served, batch, rows, outputs)
        return bytes(response.SerializeToString())

    def _entry(self, name: str, version: str, field: str) -> Entry:
        if not name:
            raise Refused(INVALID, f"Field {field!r} must name a model.")
        try:
            return self.app.table.get(name, version or None)
        except NotFoundError as exc:
            raise Refused(NOT_FOUND, str(exc)) from None


async def _repository(change: Awaitable[T]) -> T:
    """Await a load or unload, its errors as statuses (as HTTP's)."""
    try:
        return await change
    except NotFoundError as exc:
        raise Refused(NOT_FOUND, str(exc)) from None
    except InvalidInputError as exc:
        raise Refused(INVALID, str(exc)) from None
    except StepTimeoutError as exc:
        raise Refused(UNAVAILABLE, str(exc), 1) from None
    except LooplineError as exc:
        raise Refused(INTERNAL, str(exc)) from None
    except Exception:
        ref = uuid.uuid4().hex[:12]
        log.exception("A repository change failed (error ref %s).", ref)
        raise Refused(INTERNAL, f"Internal error (ref {ref}); see the server log.") from None


__all__ = ["EXTENSIONS", "STATUS", "InferenceService", "Refused"]
