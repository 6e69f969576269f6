"""A loaded model bundle: its signature and a typed ``predict``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from loopline.bundle.batch import Batch, coerce_batch
from loopline.bundle.derived_predict import ProbaArgmax
from loopline.bundle.manifest import Manifest
from loopline.bundle.onnx_flavor import OnnxPredictor
from loopline.bundle.signature import DTYPES, Signature
from loopline.errors import InvalidInputError


def _frame(columns: Mapping[str, np.ndarray[Any, Any]]) -> Any:
    try:
        import pandas as pd

        return pd.DataFrame(dict(columns), copy=False)
    except ImportError:  # pragma: no cover - pandas is present wherever sklearn pipelines are
        import polars as pl

        return pl.DataFrame({k: v for k, v in columns.items()})


def _check_inputs(
    sig: Signature, batch: Mapping[str, np.ndarray[Any, Any]] | np.ndarray[Any, Any]
) -> None:
    """Raise unless ``batch`` gives every input of ``sig`` (or is the one tensor).

    Raises:
        InvalidInputError: one array for a column signature, or a missing input.
    """
    if isinstance(batch, np.ndarray):
        if not sig.is_tensor:
            raise InvalidInputError(
                f"This model takes named columns {[s.name for s in sig.inputs]}; pass a "
                "mapping of column name to array, not one array."
            )
        return
    missing = [s.name for s in sig.inputs if s.name not in batch]
    if missing:
        raise InvalidInputError(
            f"Missing input {missing[0]!r}; the model takes {[s.name for s in sig.inputs]}."
        )


def model_input(
    sig: Signature,
    input_kind: str,
    batch: Mapping[str, np.ndarray[Any, Any]] | np.ndarray[Any, Any],
) -> Any:
    """What an estimator of signature ``sig`` receives: a 2-D array, or a data frame in
    signature order when ``input_kind`` is ``"frame"``.

    Raises:
        InvalidInputError: one array for a column signature, or a missing input.
    """
    _check_inputs(sig, batch)
    if isinstance(batch, np.ndarray):
        return batch
    if sig.is_tensor:
        return batch[sig.inputs[0].name]
    if input_kind == "frame":
        return _frame({s.name: batch[s.name] for s in sig.inputs})
    return np.column_stack([np.asarray(batch[s.name], dtype=np.float64) for s in sig.inputs])


@dataclass(frozen=True, slots=True, eq=False)
class LoadedModel:
    """A model read from a bundle by :func:`loopline.bundle.load_model`.

    ``predict`` takes a mapping of input name → array (or, for a single-tensor signature, the
    array itself) and returns output name → array, one entry per served method. ``calls``
    holds faster equivalents of some methods (see :mod:`loopline.bundle.forest`), used in
    their place; ``argmax`` derives ``predict`` from ``predict_proba``
    (:mod:`loopline.bundle.derived_predict`); ``compiled`` is the ONNX model that answers
    instead of ``estimator`` when the bundle's compiled path passed its check at load
    (:mod:`loopline.bundle.onnx_flavor`).
    """

    path: Path
    manifest: Manifest
    digest: str
    estimator: Any
    calls: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    argmax: ProbaArgmax | None = None
    compiled: OnnxPredictor | None = None

    @property
    def signature(self) -> Signature:
        return self.manifest.signature

    @property
    def methods(self) -> tuple[str, ...]:
        return self.manifest.methods

    @property
    def serving_path(self) -> str:
        """What answers requests: ``"onnx"`` (onnxruntime) or the bundle's flavor."""
        return "onnx" if self.compiled is not None else self.manifest.flavor

    def model_input(self, batch: Mapping[str, np.ndarray[Any, Any]] | np.ndarray[Any, Any]) -> Any:
        """What the estimator receives: a 2-D array or a data frame in signature order."""
        return model_input(self.manifest.signature, self.manifest.input_kind, batch)

    def predict(
        self,
        batch: Mapping[str, np.ndarray[Any, Any]] | np.ndarray[Any, Any],
        outputs: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray[Any, Any]]:
        """Run the served methods (or only ``outputs``) on ``batch``.

        With a compiled path, one onnxruntime call answers every method. Otherwise, when
        ``argmax`` is set and both ``predict`` and ``predict_proba`` are asked for, the model
        runs once: ``predict`` comes from the probabilities (the same labels, see
        :mod:`loopline.bundle.derived_predict`).

        Raises:
            InvalidInputError: a missing input, or an unknown output name.
        """
        names = self.methods if outputs is None else tuple(outputs)
        for name in names:
            if name not in self.methods:
                raise InvalidInputError(
                    f"Unknown output {name!r}; the model serves {list(self.methods)}."
                )
        sig = self.manifest.signature
        raw: dict[str, Any]
        if self.compiled is not None:
            _check_inputs(sig, batch)
            raw = self.compiled.run(batch, names)
        else:
            x = self.model_input(batch)
            raw = {}
            if self.argmax is not None and "predict" in names and "predict_proba" in names:
                proba = np.asarray(self._call("predict_proba")(x))
                raw["predict_proba"] = proba
                raw["predict"] = self.argmax.labels(proba, x, self._call("predict"))
            for name in names:
                if name not in raw:
                    raw[name] = self._call(name)(x)
        result: dict[str, np.ndarray[Any, Any]] = {}
        for name in names:
            y = np.asarray(raw[name])
            spec = sig.output(name)
            if spec.dtype != "string" and y.dtype != DTYPES[spec.dtype]:
                y = y.astype(DTYPES[spec.dtype])
            elif spec.dtype == "string" and y.dtype.kind != "O":
                y = y.astype(str).astype(object)
            result[name] = y
        return result

    def _call(self, name: str) -> Callable[[Any], Any]:
        return self.calls.get(name) or getattr(self.estimator, name)

    def example_batch(self) -> Batch:
        """A small valid batch: the saved input example, or one synthetic row of zeros/"".

        Used for the warm-up inference that gates readiness.
        """
        sig = self.manifest.signature
        if self.manifest.example is not None:
            batch, _ = coerce_batch(sig, self.manifest.example)
            return batch
        out: Batch = {}
        for spec in sig.inputs:
            shape = (1, *spec.shape[1:])
            if spec.dtype == "string":
                out[spec.name] = np.full(shape, "", dtype=object)
            else:
                out[spec.name] = np.zeros(shape, dtype=DTYPES[spec.dtype])
        return out
