"""The inference core of the model server: one request's body → the model → one answer.

:class:`Inference` turns a request body for ``POST /v2/models/{m}[/versions/{v}]/infer``,
``/invocations`` (MLflow) or ``/v1/models/{m}:predict`` (KServe V1, TF Serving) into the
``(status, body, headers)`` of its response: it decodes the protocol, checks the inputs
against the model's signature, runs the model (through the entry's batching queue when it has
one), encodes the outputs, offers the request to the prediction log and counts it in the
metrics. Every failure is an answer, never an exception: 400 bad input (naming the field),
413 body too large, 415 unsupported media type, 503 not ready or overloaded (Retry-After), 500
only for a bug in a model (with an error reference, never a stack trace). The one exception
is :class:`~loopline.serving.http.ClientDisconnected`: nothing can be answered.

Transports call it with a way to read the body: the ASGI app (:mod:`.app`) reads it from the
ASGI ``receive`` channel; the connection's direct path (:mod:`.connection`) hands over a body
it already holds, so both answer byte for byte the same.
"""

from __future__ import annotations

import logging
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable

from loopline.bundle import Batch
from loopline.errors import InvalidInputError, UnsupportedMediaTypeError
from loopline.serving import binary, protocols
from loopline.serving.batcher import AdaptiveBatcher, Outputs, Overloaded
from loopline.serving.http import (
    BodyTooLarge,
    ClientDisconnected,
    HttpError,
    RequestBody,
    error_body,
)
from loopline.serving.metrics import Metrics
from loopline.serving.model_table import Entry
from loopline.serving.options import ServedModel, ServerOptions
from loopline.serving.prediction_log import LogRecord, SegmentWriter
from loopline.serving.typed_batch import typed_batch

log = logging.getLogger(__name__)

Headers = list[tuple[bytes, bytes]]
#: A response: status, body, headers (content-type first when not JSON; no content-length).
Answer = tuple[int, bytes, Headers]
ReadBody = Callable[[], Awaitable[RequestBody]]


class Inference:
    """The inference core shared by the ASGI app, the direct HTTP path and gRPC.

    Args:
        metrics: the worker's metrics (in flight, requests by status, latency).
        options: the server's options (body limit, prediction log sampling).
    """

    def __init__(self, metrics: Metrics, options: ServerOptions) -> None:
        self.metrics = metrics
        self.options = options
        self.pred_log: SegmentWriter | None = None  # set once the writer starts

    def make_batcher(self, entry: Entry) -> AdaptiveBatcher:
        """The batching queue of ``entry``, reporting to the metrics under its labels."""
        labels = entry.labels
        m = self.metrics

        def on_batch(rows: int, delays: list[float]) -> None:
            m.batch_size.observe(labels, rows)
            for d in delays:
                m.queue_delay.observe(labels, d)

        def on_done(rows: int, seconds: float) -> None:
            m.batch_duration.observe(labels, seconds)

        def on_shed(reason: str) -> None:
            m.shed.inc((*labels, reason))

        model = entry.served.model
        return AdaptiveBatcher(
            model.predict,
            self.options.batching,
            on_batch=on_batch,
            on_done=on_done,
            on_shed=on_shed,
        )

    async def infer(self, entry: Entry, protocol: str, read: ReadBody) -> Answer:
        """Answer one inference request on ``entry`` in ``protocol`` (``"v2"``, ``"mlflow"``
        or ``"v1"``); ``read`` returns its body (and raises what :func:`.http.read_body`
        raises). The caller holds ``entry`` (``with entry:``) and sends the answer.

        Raises:
            ClientDisconnected: the client went away before its body was read.
        """
        start = time.perf_counter()
        labels = entry.labels
        served = entry.served
        m = self.metrics
        m.in_flight.inc(labels)
        status = 500
        headers: Headers = []
        try:
            try:
                if not entry.ready:  # shutting down still answers what reached us
                    raise HttpError(
                        503,
                        f"Model {served.name!r} version {served.version} is not ready.",
                        [(b"retry-after", b"1")],
                    )
                got = await read()
                rid = got.request_id
                if protocol != "v2" and got.inference_header is not None:
                    raise InvalidInputError(
                        "The Inference-Header-Content-Length header (binary tensor data) is "
                        "read by V2 inference only (/v2/models/{m}/infer); send this endpoint "
                        "an all-JSON body without it."
                    )
                body = binary.split_body(got.data, got.inference_header, got.content_type)
                sig = served.model.signature
                request = None
                key = "predictions"
                if protocol == "v2":
                    if body.raw and body.tensors is not None:
                        request = protocols.parse_v2_raw(body.tensors, sig)
                    else:
                        request = protocols.parse_v2(body.document, sig, body.tensors)
                    raw = request.inputs
                    rid = request.id or rid
                else:
                    if protocol == "mlflow":
                        raw = protocols.decode_mlflow(body.document, sig)
                    else:
                        raw, key = protocols.decode_predict(body.document, sig)
                batch, rows = typed_batch(sig, raw)  # converts each value once
                outputs = await self.predict(entry, batch, rows)
                if rid is None:  # 32 random hex digits, as uuid4().hex at a seventh of the cost
                    rid = os.urandom(16).hex()
                framing: Headers = []
                if request is not None:
                    wanted = request.outputs
                    shown = outputs if wanted is None else {k: outputs[k] for k in wanted}
                    as_binary = request.binary_outputs(shown)
                    if as_binary:
                        payload, head = protocols.encode_v2_binary(
                            served.name, served.version, rid, shown, sig, as_binary
                        )
                        framing = [
                            (b"content-type", binary.OCTET_STREAM),
                            (binary.HEADER, b"%d" % head),
                        ]
                    else:
                        payload = protocols.encode_v2(served.name, served.version, rid, shown, sig)
                else:
                    payload = protocols.encode_predictions(outputs, key)
                self.log_prediction(rid, served, batch, rows, outputs)
                status = 200
                headers = [*framing, (b"x-request-id", rid.encode("latin-1", "replace"))]
            except ClientDisconnected:
                status = 499  # nginx's "client closed request", for the metrics only
                raise
            except HttpError as exc:
                status, payload, headers = (
                    exc.status,
                    error_body(protocol, exc.status, str(exc)),
                    exc.headers,
                )
            except UnsupportedMediaTypeError as exc:
                status, payload = 415, error_body(protocol, 415, str(exc))
            except InvalidInputError as exc:
                status, payload = 400, error_body(protocol, 400, str(exc))
            except BodyTooLarge:
                status = 413
                limit = self.options.max_body_bytes
                msg = f"The request body is larger than the server's limit of {limit} bytes."
                payload = error_body(protocol, 413, msg)
            except Overloaded as exc:
                status, payload = 503, error_body(protocol, 503, str(exc))
                headers = [(b"retry-after", str(exc.retry_after).encode())]
            except (ValueError, TypeError) as exc:  # the estimator rejected the values
                status, payload = (
                    400,
                    error_body(protocol, 400, f"The model rejected the input: {exc}"),
                )
            except Exception:
                ref = uuid.uuid4().hex[:12]
                log.exception("Prediction failed (error ref %s).", ref)
                payload = error_body(
                    protocol,
                    500,
                    f"Internal error while predicting (ref {ref}); see the server log.",
                )
            return status, payload, headers
        finally:
            m.in_flight.inc(labels, -1.0)
            m.requests.inc((*labels, protocol, str(status)))
            m.latency.observe(labels, time.perf_counter() - start)

    async def predict(self, entry: Entry, batch: Batch, rows: int) -> Outputs:
        """``batch`` through ``entry``'s batching queue, or straight to its model.

        Raises:
            Overloaded: the batching queue refused or shed the request.
        """
        if entry.batcher is not None:
            return await entry.batcher.submit(batch, rows)
        return entry.served.model.predict(batch)

    def log_prediction(
        self, rid: str, served: ServedModel, batch: Batch, rows: int, outputs: Outputs
    ) -> None:
        """Offer one answered request to the prediction log (sampled; never blocks)."""
        writer = self.pred_log
        if writer is None:
            return
        rate = self.options.log.sample_rate if self.options.log else 0.0
        if rate < 1.0 and random.random() >= rate:
            return
        writer.offer(
            LogRecord(
                rid,
                time.time(),
                served.name,
                served.version,
                rows,
                {"inputs": batch, "outputs": outputs},
            )
        )


__all__ = ["Answer", "Inference", "ReadBody"]
