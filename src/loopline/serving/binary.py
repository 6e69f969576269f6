"""The binary tensor data extension of the Open Inference Protocol (KServe / Triton).

A V2 inference body may carry tensors as raw bytes after its JSON part. The request header
``Inference-Header-Content-Length: N`` says that the first ``N`` bytes are the JSON
``$inference_request`` and the rest is binary tensor data, one block per input that has the
parameter ``binary_data_size``, in input order, with nothing left over. ``N = 0`` is a *raw
binary request*: the whole body is the data of a single-input model's one input.

Element layout (the spec's, shared with gRPC ``raw_input_contents``): little-endian, row
major, no padding; BOOL is one byte 0 or 1; BF16 the upper half of an IEEE float32; BYTES
is a 4-byte little-endian length followed by that many bytes, per element.

This module reads and writes those bytes; :mod:`loopline.serving.protocols` decides which
tensor each block belongs to. Fixed-size tensors are NumPy views on the request body (no
copy) when the block is aligned for its element type.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from loopline.errors import InvalidInputError, UnsupportedMediaTypeError

#: The request and response header giving the length of the JSON part of the body.
HEADER = b"inference-header-content-length"
#: The media type of a body with binary tensors (request and response).
OCTET_STREAM = b"application/octet-stream"

#: Element type of each fixed-size V2 datatype on the wire (little-endian).
WIRE_DTYPE: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("u1"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_LENGTH = struct.Struct("<I")
_INT64_MAX = np.iinfo(np.int64).max


def element_count(shape: Sequence[int]) -> int:
    """Elements in a tensor of ``shape`` (exact: Python integers never overflow)."""
    return math.prod(shape)


# ------------------------------------------------------------------------- body
class Tensors:
    """The binary part of a request body, handed out block by block in input order."""

    __slots__ = ("_data", "_offset")

    def __init__(self, data: memoryview) -> None:
        self._data = data
        self._offset = 0

    @property
    def remaining(self) -> int:
        """Bytes not yet taken."""
        return len(self._data) - self._offset

    def take(self, name: str, size: int) -> memoryview:
        """The next ``size`` bytes, for input ``name``.

        Raises:
            InvalidInputError: fewer than ``size`` bytes are left.
        """
        left = self.remaining
        if size > left:
            raise InvalidInputError(
                f"Input {name!r} has parameters.binary_data_size {size} but only {left} bytes "
                "of binary data are left in the body; binary blocks follow the JSON part in "
                "the order of 'inputs'."
            )
        start = self._offset
        self._offset = start + size
        return self._data[start : self._offset]

    def finish(self) -> None:
        """Raise InvalidInputError if bytes are left that no input claimed."""
        left = self.remaining
        if left:
            raise InvalidInputError(
                f"The body has {left} bytes of binary data after the last binary input; every "
                "byte after the JSON part must belong to an input with "
                "parameters.binary_data_size."
            )


@dataclass(frozen=True, slots=True)
class InferBody:
    """An inference request body split at its ``Inference-Header-Content-Length``.

    ``document`` is the parsed JSON part (``None`` for a raw binary request); ``tensors``
    the binary part (``None`` when the body is all JSON); ``raw`` is true when the header
    was 0 and ``tensors`` is the whole body.
    """

    document: Any
    tensors: Tensors | None = None
    raw: bool = False


def _json(data: bytes | memoryview, what: str, hint: str = "") -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"{what} is not valid JSON: {exc}.{hint}") from None


def _media_type(content_type: bytes) -> bytes:
    return content_type.split(b";", 1)[0].strip().lower()


def split_body(data: bytes, header: bytes | None, content_type: bytes | None) -> InferBody:
    """Split a request body by its ``Inference-Header-Content-Length`` value ``header``.

    Without the header the whole body is JSON, whatever its Content-Type. With it, binary
    data may follow the JSON part; a body that carries binary data must be sent as
    ``application/octet-stream`` or without a Content-Type.

    Raises:
        InvalidInputError: the header is not a non-negative integer, is larger than the body,
            or the JSON part is not valid JSON.
        UnsupportedMediaTypeError: binary data under another Content-Type.
    """
    if header is None:
        hint = ""
        if content_type is not None and _media_type(content_type) == OCTET_STREAM:
            hint = (
                " A body with binary tensors needs the Inference-Header-Content-Length header "
                "giving the length of its JSON part."
            )
        return InferBody(_json(data, "The request body", hint))
    text = header.strip()
    if not text.isdigit():
        raise InvalidInputError(
            f"The Inference-Header-Content-Length header ({header[:40]!r}) must be the length "
            "in bytes of the body's JSON part, a non-negative integer."
        )
    length = int(text)
    if length > len(data):
        raise InvalidInputError(
            f"The Inference-Header-Content-Length header ({length}) is larger than the request "
            f"body ({len(data)} bytes); it must give the length of the body's JSON part."
        )
    if length == len(data) and length > 0:
        return InferBody(_json(data, "The request body"))
    if content_type is not None and _media_type(content_type) != OCTET_STREAM:
        raise UnsupportedMediaTypeError(
            f"The body carries binary tensors (Inference-Header-Content-Length: {length} of "
            f"{len(data)} bytes) but its Content-Type is {content_type[:60].decode('latin-1')!r}; "
            "send it as application/octet-stream (or without a Content-Type)."
        )
    view = memoryview(data)
    if length == 0:
        return InferBody(None, Tensors(view), raw=True)
    document = _json(
        view[:length],
        f"The JSON part of the body (its first {length} bytes, per "
        "Inference-Header-Content-Length)",
    )
    return InferBody(document, Tensors(view[length:]))


# ---------------------------------------------------------------------- tensors
def byte_size(datatype: str, shape: Sequence[int]) -> int | None:
    """Bytes of a fixed-size tensor, or None for BYTES (its size depends on the elements)."""
    wire = WIRE_DTYPE.get(datatype)
    return None if wire is None else element_count(shape) * wire.itemsize


def decode_tensor(
    name: str, datatype: str, shape: Sequence[int], data: memoryview | bytes
) -> np.ndarray[Any, Any]:
    """The tensor ``name`` of ``datatype`` and ``shape`` encoded in ``data``.

    Fixed-size types come back as their NumPy type (BOOL as ``bool``, BF16 widened to
    ``float32``), viewing ``data`` without a copy when it is aligned; BYTES as an object
    array of ``str`` (UTF-8).

    Raises:
        InvalidInputError: ``data`` is not exactly ``shape``'s elements of ``datatype``, a
            BOOL byte is not 0 or 1, a BYTES element overruns or is not UTF-8.
    """
    count = element_count(shape)
    if datatype == "BYTES":
        return np.asarray(decode_bytes(name, data, count), dtype=object).reshape(shape)
    wire = WIRE_DTYPE[datatype]
    need = count * wire.itemsize
    if len(data) != need:
        raise InvalidInputError(
            f"Input {name!r} has {len(data)} bytes of binary data but shape {list(shape)} of "
            f"{datatype} needs {need} ({count} × {wire.itemsize}); parameters.binary_data_size "
            "must match the shape."
        )
    arr = np.frombuffer(data, dtype=wire)
    if not arr.flags.aligned:
        arr = arr.copy()
    if datatype == "BOOL":
        if count and int(arr.max()) > 1:
            raise InvalidInputError(
                f"Input {name!r} is BOOL but holds a byte other than 0 or 1 (false or true)."
            )
        arr = arr.view(np.bool_)
    elif datatype == "BF16":
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    return arr.reshape(shape)


def decode_bytes(name: str, data: memoryview | bytes, count: int) -> list[str]:
    """``count`` BYTES elements (4-byte little-endian length, then the bytes) as text.

    Raises:
        InvalidInputError: the elements do not fill ``data`` exactly, or one is not UTF-8.
    """
    size = len(data)
    if count * _LENGTH.size > size:
        raise InvalidInputError(
            f"Input {name!r} has {size} bytes of binary data, too few for {count} BYTES "
            f"elements (each starts with a 4-byte length)."
        )
    out: list[str] = []
    offset = 0
    unpack = _LENGTH.unpack_from
    for i in range(count):
        if offset + 4 > size:
            raise InvalidInputError(
                f"Input {name!r}: BYTES element {i} starts at byte {offset}, past the end of "
                f"its {size} bytes of binary data."
            )
        (length,) = unpack(data, offset)
        offset += 4
        end = offset + length
        if end > size:
            raise InvalidInputError(
                f"Input {name!r}: BYTES element {i} claims {length} bytes but only "
                f"{size - offset} are left in its binary data."
            )
        try:
            out.append(str(data[offset:end], "utf-8"))
        except UnicodeDecodeError:
            raise InvalidInputError(
                f"Input {name!r}: BYTES element {i} is not UTF-8 text; the model takes strings."
            ) from None
        offset = end
    if offset != size:
        raise InvalidInputError(
            f"Input {name!r} has {size - offset} bytes of binary data after its {count} BYTES "
            "elements; parameters.binary_data_size must be the exact size of the elements."
        )
    return out


def count_bytes_elements(name: str, data: memoryview | bytes) -> int:
    """How many BYTES elements ``data`` holds, read to its end (raw binary requests).

    Raises:
        InvalidInputError: an element overruns the end of ``data``.
    """
    size = len(data)
    offset = 0
    count = 0
    unpack = _LENGTH.unpack_from
    while offset < size:
        if offset + 4 > size:
            raise InvalidInputError(
                f"Input {name!r}: BYTES element {count} starts at byte {offset}, but fewer than "
                f"4 bytes are left for its length."
            )
        (length,) = unpack(data, offset)
        offset += 4 + length
        if offset > size:
            raise InvalidInputError(
                f"Input {name!r}: BYTES element {count} claims {length} bytes, past the end of "
                "the body."
            )
        count += 1
    return count


def check_int64(name: str, arr: np.ndarray[Any, Any]) -> None:
    """Raise InvalidInputError if an unsigned tensor holds a value past int64's range."""
    if arr.dtype == np.uint64 and arr.size and int(arr.max()) > _INT64_MAX:
        raise InvalidInputError(
            f"Input {name!r} holds a UINT64 value above {_INT64_MAX}, which the model's int64 "
            "input cannot represent."
        )


def encode_tensor(arr: np.ndarray[Any, Any], datatype: str) -> bytes:
    """``arr`` as ``datatype`` on the wire (BYTES: strings as UTF-8)."""
    if datatype == "BYTES":
        return encode_bytes(arr.reshape(-1).tolist())
    if datatype == "BF16":
        bits = np.ascontiguousarray(arr, dtype="<f4").view("<u4")
        return (bits >> 16).astype("<u2").tobytes()
    if datatype == "BOOL":
        return np.ascontiguousarray(arr, dtype=np.bool_).tobytes()
    return np.ascontiguousarray(arr, dtype=WIRE_DTYPE[datatype]).tobytes()


def encode_bytes(values: Iterable[Any]) -> bytes:
    """BYTES elements: each a 4-byte little-endian length and its bytes (text as UTF-8)."""
    parts: list[bytes] = []
    pack = _LENGTH.pack
    for v in values:
        b = v if isinstance(v, bytes) else str(v).encode("utf-8")
        parts.append(pack(len(b)))
        parts.append(b)
    return b"".join(parts)


__all__ = [
    "HEADER",
    "OCTET_STREAM",
    "WIRE_DTYPE",
    "InferBody",
    "Tensors",
    "byte_size",
    "check_int64",
    "count_bytes_elements",
    "decode_bytes",
    "decode_tensor",
    "element_count",
    "encode_bytes",
    "encode_tensor",
    "split_body",
]
