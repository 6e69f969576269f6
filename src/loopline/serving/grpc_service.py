"""KServe's ``inference.GRPCInferenceService`` on the model server's inference core.

:class:`InferenceService` answers the RPCs of ``grpc_predict_v2.proto`` for a
:class:`~loopline.serving.app.ModelServerApp`: the same model table, readiness, batching
queues, prediction log and metrics (``protocol="grpc"``) as HTTP. Its handlers take and
return serialized messages (they parse the request themselves, so a message that is not
valid protobuf is INVALID_ARGUMENT rather than grpc's INTERNAL).

Status codes, as the Open Inference Protocol maps them:

- INVALID_ARGUMENT: a malformed request or one the model rejects; the message names the field.
- NOT_FOUND: an unknown model, or a version or alias it does not have.
- UNAVAILABLE: the model is not ready, or overloaded, or a repository change has not
  reached every worker in time (trailing metadata ``retry-after``).
- RESOURCE_EXHAUSTED: a message over the server's body limit (grpc's own check), or more
  RPCs in flight than the worker allows.
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

import logging
import time
import uuid
from typing import TYPE_CHECKING, Any, NoReturn

import orjson

from loopline import __version__
from loopline.bundle import coerce_batch
from loopline.errors import (
    InvalidInputError,
    LooplineError,
    NotFoundError,
    StepTimeoutError,
    require,
)
from loopline.serving import grpc_predict_v2_pb2 as pb
from loopline.serving import protocols
from loopline.serving.batcher import Overloaded
from loopline.serving.grpc_tensors import decode_infer_request, encode_outputs
from loopline.serving.repository import LoadParameters

if TYPE_CHECKING:
    from loopline.serving.app import ModelServerApp
    from loopline.serving.model_table import Entry

log = logging.getLogger(__name__)

#: The Open Inference Protocol extensions the gRPC face supports.
EXTENSIONS = ("model_repository", "model_repository_versions")

_OK, _INVALID, _NOT_FOUND, _UNAVAILABLE, _INTERNAL = 200, 400, 404, 503, 500
_UNAUTHENTICATED, _DENIED = 401, 403
_CANCELLED = 499


class _Refused(Exception):
    """An RPC answered with a non-OK status: ``http`` is its HTTP equivalent (metrics)."""

    def __init__(self, http: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.http = http
        self.retry_after = retry_after


class InferenceService:
    """The RPC handlers of one worker's :class:`ModelServerApp` (see module docstring)."""

    def __init__(self, app: ModelServerApp) -> None:
        require("grpc", "grpc", "Serving gRPC (--grpc-port)")
        self.app = app

    def method_handlers(self) -> dict[str, Any]:
        """``{method name: grpc.RpcMethodHandler}`` for every method of the service."""
        import grpc

        behaviours = {
            "ServerLive": self.server_live,
            "ServerReady": self.server_ready,
            "ModelReady": self.model_ready,
            "ServerMetadata": self.server_metadata,
            "ModelMetadata": self.model_metadata,
            "ModelInfer": self.model_infer,
            "RepositoryModelLoad": self.repository_model_load,
            "RepositoryModelUnload": self.repository_model_unload,
        }
        missing = {m.name for m in pb.SERVICE.methods} ^ set(behaviours)
        assert not missing, f"methods of grpc_predict_v2.proto without a handler: {missing}"
        return {name: grpc.unary_unary_rpc_method_handler(b) for name, b in behaviours.items()}

    # ------------------------------------------------------------------ health
    async def server_live(self, data: bytes, context: Any) -> bytes:
        await _parse(pb.ServerLiveRequest, data, context)
        return bytes(pb.ServerLiveResponse(live=True).SerializeToString())

    async def server_ready(self, data: bytes, context: Any) -> bytes:
        await _parse(pb.ServerReadyRequest, data, context)
        return bytes(pb.ServerReadyResponse(ready=self.app.ready).SerializeToString())

    async def model_ready(self, data: bytes, context: Any) -> bytes:
        request = await _parse(pb.ModelReadyRequest, data, context)
        entry = await self._entry(request.name, request.version, context, "name")
        ready = entry.ready and not self.app.shutting_down
        return bytes(pb.ModelReadyResponse(ready=ready).SerializeToString())

    # ---------------------------------------------------------------- metadata
    async def server_metadata(self, data: bytes, context: Any) -> bytes:
        await _parse(pb.ServerMetadataRequest, data, context)
        response = pb.ServerMetadataResponse(
            name=self.app.options.server_name, version=__version__, extensions=EXTENSIONS
        )
        return bytes(response.SerializeToString())

    async def model_metadata(self, data: bytes, context: Any) -> bytes:
        request = await _parse(pb.ModelMetadataRequest, data, context)
        entry = await self._entry(request.name, request.version, context, "name")
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
    async def repository_model_load(self, data: bytes, context: Any) -> bytes:
        request = await _parse(pb.RepositoryModelLoadRequest, data, context)
        name = await self._repository_name(request.model_name, "load", context)
        spec = await self._repository(self.app.repository.load(name, LoadParameters()), context)
        response = pb.RepositoryModelLoadResponse(model_name=spec.name, isLoaded=True)
        return bytes(response.SerializeToString())

    async def repository_model_unload(self, data: bytes, context: Any) -> bytes:
        request = await _parse(pb.RepositoryModelUnloadRequest, data, context)
        name = await self._repository_name(request.model_name, "unload", context)
        await self._repository(self.app.repository.unload(name), context)
        response = pb.RepositoryModelUnloadResponse(model_name=name, isUnloaded=True)
        return bytes(response.SerializeToString())

    async def _repository_name(self, name: str, action: str, context: Any) -> str:
        """``name`` once the caller may ``action`` models (as HTTP: 403 off, 401 token)."""
        options = self.app.repository.options
        if not options.mutable:
            await _abort(
                context,
                _Refused(
                    _DENIED,
                    f"Model {action} is off on this server: start it with "
                    "--repository-token-file FILE (then send the metadata authorization: "
                    "Bearer <token>) or, where every local user is trusted, "
                    "--repository-allow-unauthenticated.",
                ),
            )
        header = next(
            (v for k, v in context.invocation_metadata() or () if k == "authorization"), None
        )
        raw = header.encode("latin-1", "replace") if isinstance(header, str) else header
        if not options.authorized(raw):
            await _abort(
                context,
                _Refused(
                    _UNAUTHENTICATED,
                    f"Model {action} needs the server's repository token (metadata "
                    "authorization: Bearer <token>, the token in the file given to "
                    "--repository-token-file).",
                ),
            )
        if not name:
            await _abort(context, _Refused(_INVALID, "Field 'model_name' must name a model."))
        return name

    async def _repository(self, change: Any, context: Any) -> Any:
        """Await a load or unload, its errors as status codes (as HTTP's)."""
        try:
            return await change
        except NotFoundError as exc:
            refused = _Refused(_NOT_FOUND, str(exc))
        except InvalidInputError as exc:
            refused = _Refused(_INVALID, str(exc))
        except StepTimeoutError as exc:
            refused = _Refused(_UNAVAILABLE, str(exc), 1)
        except LooplineError as exc:
            refused = _Refused(_INTERNAL, str(exc))
        except Exception:
            ref = uuid.uuid4().hex[:12]
            log.exception("A repository change failed (error ref %s).", ref)
            refused = _Refused(_INTERNAL, f"Internal error (ref {ref}); see the server log.")
        await _abort(context, refused)

    # ---------------------------------------------------------------- inference
    async def model_infer(self, data: bytes, context: Any) -> bytes:
        request = await _parse(pb.ModelInferRequest, data, context)
        entry = await self._entry(request.model_name, request.model_version, context, "model_name")
        with entry:  # counted in flight: an unload waits for it
            return await self._answer(entry, request, context)

    async def _answer(self, entry: Entry, request: Any, context: Any) -> bytes:
        start = time.perf_counter()
        metrics = self.app.metrics
        labels = entry.labels
        metrics.in_flight.inc(labels)
        status = _INTERNAL
        try:
            try:
                payload = await self._infer(entry, request)
                status = _OK
                return payload
            except _Refused as exc:
                refused = exc
            except InvalidInputError as exc:
                refused = _Refused(_INVALID, str(exc))
            except Overloaded as exc:
                refused = _Refused(_UNAVAILABLE, str(exc), exc.retry_after)
            except (ValueError, TypeError) as exc:  # the estimator rejected the values
                refused = _Refused(_INVALID, f"The model rejected the input: {exc}")
            except Exception:
                ref = uuid.uuid4().hex[:12]
                log.exception("Prediction failed (error ref %s).", ref)
                refused = _Refused(
                    _INTERNAL, f"Internal error while predicting (ref {ref}); see the server log."
                )
            status = refused.http
            await _abort(context, refused)
        except BaseException:
            if status == _INTERNAL and context.cancelled():
                status = _CANCELLED
            raise
        finally:
            metrics.in_flight.inc(labels, -1.0)
            metrics.requests.inc((*labels, "grpc", str(status)))
            metrics.latency.observe(labels, time.perf_counter() - start)

    async def _infer(self, entry: Entry, request: Any) -> bytes:
        served = entry.served
        if not entry.ready:  # shutting down still answers what reached us
            raise _Refused(
                _UNAVAILABLE, f"Model {served.name!r} version {served.version} is not ready.", 1
            )
        signature = served.model.signature
        arrays, wanted = decode_infer_request(request, signature)
        rid = request.id
        if rid:
            protocols.check_request_id(rid, "Field 'id'")
        batch, rows = coerce_batch(signature, arrays)
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

    async def _entry(self, name: str, version: str, context: Any, field: str) -> Entry:
        if not name:
            await _abort(context, _Refused(_INVALID, f"Field {field!r} must name a model."))
        try:
            return self.app.table.get(name, version or None)
        except NotFoundError as exc:
            await _abort(context, _Refused(_NOT_FOUND, str(exc)))


async def _parse(message: Any, data: bytes, context: Any) -> Any:
    from google.protobuf.message import DecodeError

    try:
        return message.FromString(data)
    except DecodeError as exc:
        full_name = message.DESCRIPTOR.full_name
        await _abort(
            context,
            _Refused(_INVALID, f"The request is not a valid {full_name} message ({exc})."),
        )


_STATUS = {
    _INVALID: "INVALID_ARGUMENT",
    _UNAUTHENTICATED: "UNAUTHENTICATED",
    _DENIED: "PERMISSION_DENIED",
    _NOT_FOUND: "NOT_FOUND",
    _UNAVAILABLE: "UNAVAILABLE",
    _INTERNAL: "INTERNAL",
}


async def _abort(context: Any, refused: _Refused) -> NoReturn:
    """End the RPC with ``refused``'s status and message (``context.abort`` raises)."""
    import grpc

    trailing = () if refused.retry_after is None else (("retry-after", str(refused.retry_after)),)
    code = getattr(grpc.StatusCode, _STATUS[refused.http])
    await context.abort(code, str(refused), trailing_metadata=trailing)
    raise AssertionError("unreachable: abort raises")


__all__ = ["EXTENSIONS", "InferenceService"]
