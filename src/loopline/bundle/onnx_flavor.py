"""The ``onnx`` flavor: a model in ONNX, answered by onnxruntime.

The same runner serves a native ONNX bundle (flavor ``onnx``, ``model.onnx`` only) and the
compiled path of a scikit-learn bundle (``model.onnx`` beside ``model.skops``, see
:mod:`loopline.bundle.compiler`).

Nothing executes at load. An ONNX file is a graph of operators, run by onnxruntime's own
kernels; loading reads the file's bytes once from the verified private copy, checks them
against the recorded sha256, refuses a model that points at external data files (onnxruntime
would read any path the model names), and hands those very bytes to
``onnxruntime.InferenceSession`` — no custom-operator library is ever registered. Each session
runs on one thread (``intra_op_num_threads=1``, sequential execution): a model server runs one
process per worker, and measured on the taxi model a second thread made a 32-row batch no
faster (``benchmarks/serving/README.md``).

Inputs map by name. A column signature gives one ONNX input per column (``[None, 1]``, as
skl2onnx makes for a ``ColumnTransformer`` fed column by column); a tensor signature, one 2-D
input. Values are cast to the input's ONNX type (``double``, ``float``, ``int64``, ``string``,
``bool``). Outputs map to served methods through :attr:`OnnxPart.outputs
<loopline.bundle.onnx_part.OnnxPart.outputs>`; one ``session.run`` answers all of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from loopline.bundle.onnx_part import MODEL_FILE, OnnxPart
from loopline.bundle.signature import Signature, TensorSpec
from loopline.errors import InvalidInputError, require

#: The one 2-D input of a column model whose columns are stacked in signature order.
STACKED = "columns"
#: Threads per session (see the module docstring for the measurement).
THREADS = 1
#: skl2onnx's output names, tried when a method has no output of its own name.
CONVENTIONAL_OUTPUTS: Mapping[str, tuple[str, ...]] = {
    "predict": ("label", "variable"),
    "predict_proba": ("probabilities",),
}
_NUMPY_OF = {
    "tensor(double)": np.float64,
    "tensor(float)": np.float32,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}


def session_options(threads: int = THREADS) -> Any:
    """onnxruntime session options: ``threads`` intra-op threads, sequential, quiet."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 4  # failures are raised, not logged twice
    return options


def read(directory: Path, *, name: str, sha256: str | None, shown_as: Path | None) -> bytes:
    """The bytes of ``directory/name``, read once and checked against ``sha256`` (hex).

    Raises:
        InvalidInputError: unreadable, or the bytes do not match.
    """
    path = (shown_as or directory) / name
    try:
        data = (directory / name).read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"{str(path)!r} cannot be read ({exc.strerror}).") from exc
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise InvalidInputError(
            f"{str(path)!r} does not have the recorded sha256 {sha256}; refusing to load it."
        )
    return data


def refuse_external_data(data: bytes, source: str) -> None:
    """Raise unless every tensor of the ONNX model ``data`` is stored inside it.

    Raises:
        InvalidInputError: the bytes are not an ONNX model, or a tensor lives in a file.
    """
    require("onnx", "onnx", "Loading ONNX models")
    import onnx

    try:
        model = onnx.load_model_from_string(data)  # from bytes: external data is not read
    except Exception as exc:  # protobuf's DecodeError and friends
        raise InvalidInputError(f"{source} is not a readable ONNX model ({exc}).") from exc
    for tensor in _tensors(model.graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            raise InvalidInputError(
                f"{source} stores tensor {tensor.name!r} in an external file; loopline loads "
                "ONNX models whose data is inside the one file (save with "
                "save_as_external_data=False)."
            )


def _tensors(graph: Any) -> Any:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _tensors(attr.g)
            for sub in attr.graphs:
                yield from _tensors(sub)


def session(data: bytes, source: str, *, threads: int = THREADS) -> Any:
    """An ``onnxruntime.InferenceSession`` of the model bytes ``data`` (external data refused).

    Raises:
        DependencyMissingError: onnxruntime is not installed (names the extra).
        InvalidInputError: onnxruntime refuses the model (the message names ``source``).
    """
    require("onnxruntime", "onnx", "Serving ONNX models")
    refuse_external_data(data, source)
    import onnxruntime as ort

    try:
        return ort.InferenceSession(
            data, session_options(threads), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime's Fail / InvalidGraph / NotImplemented
        raise InvalidInputError(f"onnxruntime cannot load {source}: {exc}") from exc


def default_outputs(names: Sequence[str], methods: Sequence[str], source: str) -> dict[str, str]:
    """Method → ONNX output: an output named after the method, skl2onnx's name for it
    (:data:`CONVENTIONAL_OUTPUTS`), or the only output of a one-output model.

    Raises:
        InvalidInputError: a method has no matching output (names the outputs).
    """
    out: dict[str, str] = {}
    for method in methods:
        found = [n for n in (method, *CONVENTIONAL_OUTPUTS.get(method, ())) if n in names]
        if found:
            out[method] = found[0]
        elif len(names) == 1 and len(methods) == 1:
            out[method] = names[0]
        else:
            raise InvalidInputError(
                f"{source} has outputs {list(names)} and none answers {method!r}; name the "
                f"output {method!r} (or, as skl2onnx does, predict → 'label', predict_proba → "
                "'probabilities')."
            )
    return out


@dataclass(frozen=True, slots=True)
class _Feed:
    name: str  # ONNX input name
    column: int  # index in the signature's inputs
    dtype: Any  # NumPy type, or None for strings
    as_column: bool  # a signature column fed as [rows, 1]
    stacked: bool = False  # every signature column, stacked into one [rows, columns] input


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class OnnxPredictor:
    """A loaded ONNX model answering a bundle's served methods in one ``session.run``."""

    session: Any
    signature: Signature
    outputs: Mapping[str, str]
    feeds: tuple[_Feed, ...]

    @classmethod
    def of(
        cls, sess: Any, signature: Signature, outputs: Mapping[str, str], source: str
    ) -> OnnxPredictor:
        """Map ``sess``'s inputs to ``signature`` and check ``outputs`` exist.

        Raises:
            InvalidInputError: the ONNX inputs are not the signature's, or an output is missing.
        """
        names = [s.name for s in signature.inputs]
        given = [i.name for i in sess.get_inputs()]
        feeds: list[_Feed] = []
        if signature.is_tensor:
            if len(given) != 1:
                raise InvalidInputError(
                    f"{source} has inputs {given}; the signature's one tensor "
                    f"{names[0]!r} needs a model with one input."
                )
            feeds.append(_Feed(given[0], 0, _numpy_of(sess.get_inputs()[0], source), False))
        elif given == [STACKED] and STACKED not in names:
            feeds.append(_Feed(STACKED, 0, _numpy_of(sess.get_inputs()[0], source), False, True))
        else:
            if sorted(given) != sorted(names):
                raise InvalidInputError(
                    f"{source} has inputs {given} but the signature has columns {names}; an "
                    "ONNX model of a column signature takes one input per column, by name "
                    f"(or one input {STACKED!r} of all columns in order)."
                )
            for arg in sess.get_inputs():
                rank = len(arg.shape or ())
                feeds.append(
                    _Feed(arg.name, names.index(arg.name), _numpy_of(arg, source), rank == 2)
                )
        produced = {o.name for o in sess.get_outputs()}
        for method, output in outputs.items():
            if output not in produced:
                raise InvalidInputError(
                    f"{source} records output {output!r} for {method!r} but the model has "
                    f"outputs {sorted(produced)}."
                )
        return cls(session=sess, signature=signature, outputs=dict(outputs), feeds=tuple(feeds))

    def inputs(self, x: Any) -> dict[str, np.ndarray[Any, Any]]:
        """The session's input feed for a batch, a data frame, or a 2-D array."""
        sig = self.signature
        feed: dict[str, np.ndarray[Any, Any]] = {}
        for f in self.feeds:
            if f.stacked:
                feed[f.name] = self._stacked(x, f.dtype)
                continue
            spec = sig.inputs[f.column]
            if isinstance(x, np.ndarray):
                value: Any = x if sig.is_tensor else x[:, f.column]
            else:
                try:
                    value = x[spec.name]
                except KeyError:
                    raise InvalidInputError(
                        f"Missing input {spec.name!r}; the model takes "
                        f"{[s.name for s in sig.inputs]}."
                    ) from None
            arr: np.ndarray[Any, Any] = (
                value.to_numpy() if hasattr(value, "to_numpy") else np.asarray(value)
            )
            if f.dtype is None:
                if arr.dtype.kind != "O":
                    arr = arr.astype(str).astype(object)
            elif arr.dtype != f.dtype:
                arr = arr.astype(f.dtype)
            feed[f.name] = arr.reshape(-1, 1) if f.as_column else arr
        return feed

    def _stacked(self, x: Any, dtype: Any) -> np.ndarray[Any, Any]:
        if isinstance(x, np.ndarray):
            return x.astype(dtype, copy=False)
        columns = []
        for spec in self.signature.inputs:
            if spec.name not in x:
                raise InvalidInputError(
                    f"Missing input {spec.name!r}; the model takes "
                    f"{[s.name for s in self.signature.inputs]}."
                )
            value = x[spec.name]
            columns.append(value.to_numpy() if hasattr(value, "to_numpy") else value)
        return np.column_stack(columns).astype(dtype, copy=False)

    def run(self, x: Any, names: Sequence[str]) -> dict[str, np.ndarray[Any, Any]]:
        """The outputs of methods ``names`` for ``x``, in one ``session.run``.

        Raises:
            InvalidInputError: a missing input, or onnxruntime refused the values.
        """
        wanted = [self.outputs[n] for n in names]
        try:
            values = self.session.run(wanted, self.inputs(x))
        except Exception as exc:
            if type(exc).__name__ == "InvalidArgument":  # onnxruntime's: shape, type, rank
                raise InvalidInputError(f"The ONNX model refused the input: {exc}") from exc
            raise
        out: dict[str, np.ndarray[Any, Any]] = {}
        for name, value in zip(names, values, strict=True):
            y = np.asarray(value)
            if y.ndim == 2 and y.shape[1] == 1 and name in self._columns:
                y = y.reshape(-1)  # a regressor's [rows, 1] where scikit-learn gives [rows]
            out[name] = y
        return out

    @property
    def _columns(self) -> frozenset[str]:
        """Methods answered as one value per row (``[-1]`` in the signature, or predict)."""
        known = {s.name: len(s.shape) == 1 for s in self.signature.outputs}
        return frozenset(m for m in self.outputs if known.get(m, m == "predict"))

    def predict(self, x: Any) -> np.ndarray[Any, Any]:
        return self.run(x, ["predict"])["predict"]

    def predict_proba(self, x: Any) -> np.ndarray[Any, Any]:
        return self.run(x, ["predict_proba"])["predict_proba"]


def _numpy_of(arg: Any, source: str) -> Any:
    if arg.type == "tensor(string)":
        return None
    if arg.type not in _NUMPY_OF:
        raise InvalidInputError(
            f"{source} input {arg.name!r} has type {arg.type}; loopline feeds "
            f"{sorted([*_NUMPY_OF, 'tensor(string)'])}."
        )
    return _NUMPY_OF[arg.type]


def save(data: bytes, directory: Path, *, name: str = MODEL_FILE) -> list[str]:
    """Write the ONNX model's bytes to ``directory/name``; return the relative file names."""
    (directory / name).write_bytes(data)
    return [name]


_SIGNATURE_DTYPES = {
    "tensor(double)": "float64",
    "tensor(float)": "float32",
    "tensor(int64)": "int64",
    "tensor(string)": "string",
    "tensor(bool)": "bool",
}


def prepare(
    model: Any, signature: Signature, methods: Sequence[str]
) -> tuple[bytes, Signature, OnnxPart]:
    """What ``save_model(flavor="onnx")`` writes: the model's bytes, the signature with an
    output for every method (typed from the ONNX outputs when not given), the manifest entry.

    Raises:
        InvalidInputError: not an ONNX model, inputs that are not the signature's, a method
            without an output, or an output whose type has no signature dtype.
    """
    source = "The ONNX model"
    data = model_bytes(model)
    sess = session(data, source)
    produced = {o.name: o for o in sess.get_outputs()}
    outputs = default_outputs(list(produced), methods, source)
    specs = list(signature.outputs)
    known = {s.name for s in specs}
    for method in methods:
        if method in known:
            continue
        arg = produced[outputs[method]]
        dims = list(arg.shape or [])
        dtype = _SIGNATURE_DTYPES.get(arg.type)
        inner = dims[1:]
        if dtype is None or not all(isinstance(d, int) for d in inner):
            raise InvalidInputError(
                f"{source}'s output {arg.name!r} ({arg.type}, shape {dims}) has no signature "
                f"equivalent; give signature.outputs a TensorSpec named {method!r}."
            )
        if method == "predict" and inner == [1]:
            inner = []  # a regressor's [rows, 1], answered as [rows]
        specs.append(TensorSpec(method, dtype, (-1, *inner)))
    full = Signature(inputs=signature.inputs, outputs=tuple(specs))
    OnnxPredictor.of(sess, full, outputs, source)  # the inputs must be the signature's
    return data, full, OnnxPart(serves="onnx", file=MODEL_FILE, outputs=outputs)


def model_bytes(model: Any) -> bytes:
    """The serialized bytes of ``model`` (bytes, ``onnx.ModelProto`` or a file path).

    Raises:
        InvalidInputError: something else.
    """
    if isinstance(model, bytes | bytearray):
        return bytes(model)
    if callable(getattr(model, "SerializeToString", None)):
        return bytes(model.SerializeToString())
    if isinstance(model, str | Path):
        try:
            return Path(model).read_bytes()
        except OSError as exc:
            raise InvalidInputError(f"ONNX file {str(model)!r} cannot be read ({exc}).") from exc
    raise InvalidInputError(
        f"Flavor 'onnx' saves an ONNX model given as bytes, an onnx.ModelProto or a path to "
        f"a .onnx file, not {type(model).__name__}."
    )


def load(
    directory: Path,
    part: OnnxPart,
    signature: Signature,
    *,
    sha256: str | None,
    shown_as: Path | None = None,
    threads: int = THREADS,
) -> OnnxPredictor:
    """The predictor of the bundle's ONNX file (read once, digest checked, nothing executed).

    Raises:
        InvalidInputError: a digest mismatch, external data, a model onnxruntime refuses, or
            inputs/outputs that do not match the signature and the recorded outputs.
    """
    name = part.file or MODEL_FILE
    source = repr(str((shown_as or directory) / name))
    data = read(directory, name=name, sha256=sha256, shown_as=shown_as)
    return OnnxPredictor.of(
        session(data, source, threads=threads), signature, part.outputs, source
    )
