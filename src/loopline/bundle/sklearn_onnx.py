"""Convert a fitted scikit-learn model to ONNX with skl2onnx, typed from a bundle's signature.

Inputs follow the signature: one ``[None, 1]`` input per column for a column signature (a
``ColumnTransformer`` then selects its columns by name), one ``[None, n]`` input for a tensor
signature. Floating-point columns are declared ``double`` (``float32=False``, exact) or
``float`` (``float32=True``, what skl2onnx's converters are mostly tested with); the caller
tries both and keeps one that passes the check (:mod:`loopline.bundle.compiler`).
Classifiers output ``label`` and ``probabilities`` (``zipmap=False``: a tensor, not a list of
dictionaries); regressors ``variable``.

Two fixes to skl2onnx 1.20's tree-ensemble converters (forests and histogram gradient
boosting), applied through ``convert_sklearn``'s per-call ``custom_conversion_functions`` —
nothing is registered globally:

- the histogram gradient boosting converter puts Python ``False`` into an integer attribute
  (``nodes_missing_value_tracks_true`` of leaves), which onnx 1.17+ refuses: every
  ``HistGradientBoosting*`` conversion failed;
- with ``double`` inputs the converters still wrote thresholds and leaf values as float32
  (``TreeEnsembleClassifier`` opset 1), so a value equal to a threshold — common: histogram
  boosting splits on values seen in training — went the other way (0.145 off in probability
  on the taxi model). They are written as double tensors (``nodes_values_as_tensor``…,
  ``ai.onnx.ml`` opset 3), which onnxruntime compares in double as scikit-learn does; the
  ensemble's outputs stay float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from loopline.bundle.onnx_flavor import STACKED, default_outputs
from loopline.bundle.signature import Signature
from loopline.errors import InvalidInputError, require

#: ONNX opsets targeted: the default domain and ai.onnx.ml (TreeEnsemble* with double tensors).
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
_TREES = ("TreeEnsembleClassifier", "TreeEnsembleRegressor")
_AS_TENSOR = ("nodes_values", "class_weights", "target_weights", "base_values")
_CLASSIFIERS = ("RandomForestClassifier", "ExtraTreesClassifier", "HistGradientBoostingClassifier")
_REGRESSORS = ("RandomForestRegressor", "ExtraTreesRegressor", "HistGradientBoostingRegressor")


@dataclass(frozen=True, slots=True)
class Converted:
    """An ONNX model and which of its outputs answers each served method."""

    data: bytes
    outputs: dict[str, str]


def final_estimator(model: Any) -> Any:
    """The last step of (nested) scikit-learn Pipelines, or ``model`` itself."""
    while type(model).__name__ == "Pipeline" and getattr(model, "steps", None):
        model = model.steps[-1][1]
    return model


def first_step(model: Any) -> Any:
    """The first step of (nested) scikit-learn Pipelines, or ``model`` itself."""
    while type(model).__name__ == "Pipeline" and getattr(model, "steps", None):
        model = model.steps[0][1]
    return model


def input_types(
    signature: Signature, model: Any, *, float32: bool, ints_as_floats: bool = False
) -> list[tuple[str, Any]]:
    """skl2onnx's ``initial_types`` for ``signature``: one input per column when ``model``
    starts with a ``ColumnTransformer``, else one 2-D input (:data:`STACKED`) of all columns
    (numeric ones only) in signature order, as the estimator reads them. With
    ``ints_as_floats``, integer columns are declared floating point too (scikit-learn's
    scalers read them as float64; skl2onnx casts an integer input concatenated after a
    ``double`` one to ``float``, which onnxruntime refuses to concatenate).

    Raises:
        InvalidInputError: a dtype ONNX conversion does not support, or string columns without
            a ColumnTransformer to encode them.
    """
    from skl2onnx.common.data_types import (
        BooleanTensorType,
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )

    kinds_float = FloatTensorType if float32 else DoubleTensorType
    kinds = {
        "float64": kinds_float,
        "float32": FloatTensorType,
        "int64": kinds_float if ints_as_floats else Int64TensorType,
        "bool": BooleanTensorType,
        "string": StringTensorType,
    }
    for spec in signature.inputs:
        if spec.dtype not in kinds:
            raise InvalidInputError(f"Input {spec.name!r} has dtype {spec.dtype}; no ONNX type.")
    if signature.is_tensor:
        spec = signature.inputs[0]
        return [(spec.name, kinds[spec.dtype]([None, *spec.shape[1:]]))]
    if type(first_step(model)).__name__ == "ColumnTransformer":
        return [(s.name, kinds[s.dtype]([None, 1])) for s in signature.inputs]
    strings = [s.name for s in signature.inputs if s.dtype == "string"]
    if strings:
        raise InvalidInputError(
            f"Column {strings[0]!r} holds strings and the model does not start with a "
            "ColumnTransformer to encode them; skl2onnx converts string columns only there."
        )
    return [(STACKED, kinds_float([None, len(signature.inputs)]))]


def convert(
    model: Any,
    signature: Signature,
    methods: Sequence[str],
    *,
    float32: bool = False,
    ints_as_floats: bool = False,
) -> Converted:
    """The ONNX model of ``model`` serving ``methods`` (``predict``, ``predict_proba``);
    inputs typed as :func:`input_types` says.

    Raises:
        DependencyMissingError: skl2onnx is not installed (names the ``onnx`` extra).
        InvalidInputError: a method other than predict/predict_proba.
        Exception: whatever skl2onnx raises for a model it cannot convert (the caller turns it
            into a one-line reason).
    """
    require("skl2onnx", "onnx", "Compiling scikit-learn models to ONNX")
    from skl2onnx import convert_sklearn
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    unsupported = [m for m in methods if m not in ("predict", "predict_proba")]
    if unsupported:
        raise InvalidInputError(
            f"Only predict and predict_proba compile to ONNX; the model also serves "
            f"{unsupported[0]!r}."
        )
    final = final_estimator(model)
    is_classifier = hasattr(final, "classes_")
    options = {id(final): {"zipmap": False}} if is_classifier else {}
    converters: dict[type, Any] = {}
    shapes: dict[type, Any] = {}
    for cls in _tree_classes():
        classifier = cls.__name__ in _CLASSIFIERS
        converters[cls] = _TreeConverter(classifier=classifier, double=not float32)
        shapes[cls] = _float_outputs(
            calculate_linear_classifier_output_shapes
            if classifier
            else calculate_linear_regressor_output_shapes,
            classifier,
        )
    onx = convert_sklearn(
        model,
        initial_types=input_types(
            signature, model, float32=float32, ints_as_floats=ints_as_floats
        ),
        options=options,
        target_opset=TARGET_OPSET,
        custom_conversion_functions=converters,
        custom_shape_calculators=shapes,
    )
    names = [o.name for o in onx.graph.output]
    return Converted(onx.SerializeToString(), default_outputs(names, methods, "The ONNX model"))


def _tree_classes() -> list[type]:
    from sklearn import ensemble

    return [getattr(ensemble, name) for name in (*_CLASSIFIERS, *_REGRESSORS)]


def _float_outputs(calculate: Any, classifier: bool) -> Any:
    """skl2onnx's shape calculator, with the ensemble's float32 output declared as such."""

    def shape(operator: Any) -> None:
        from skl2onnx.common.data_types import FloatTensorType

        calculate(operator)
        out = operator.outputs[1 if classifier else 0]
        out.type = FloatTensorType(out.type.shape)

    return shape


@dataclass(frozen=True)
class _TreeConverter:
    """skl2onnx's forest / histogram-boosting converter with the two fixes of the module."""

    classifier: bool
    double: bool

    def __call__(self, scope: Any, operator: Any, container: Any) -> None:
        from skl2onnx.operator_converters import random_forest

        convert = (
            random_forest.convert_sklearn_random_forest_classifier
            if self.classifier
            else random_forest.convert_sklearn_random_forest_regressor_converter
        )
        convert(scope, operator, _Container(container, self.double), op_version=3)


class _Container:
    """A skl2onnx container whose tree-ensemble nodes get integer flags and double tensors."""

    def __init__(self, inner: Any, double: bool) -> None:
        self._inner = inner
        self._double = double

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def add_node(self, op_type: str, *args: Any, **attrs: Any) -> Any:
        if op_type in _TREES:
            from onnx import numpy_helper

            for key, value in list(attrs.items()):
                if isinstance(value, list) and any(isinstance(v, bool | np.bool_) for v in value):
                    attrs[key] = [int(v) for v in value]
            dtype = np.float64 if self._double else np.float32
            for key in _AS_TENSOR:
                if key in attrs:
                    values = np.asarray(attrs.pop(key), dtype=dtype).ravel()
                    attrs[f"{key}_as_tensor"] = numpy_helper.from_array(values)
            attrs["op_version"] = 3
        return self._inner.add_node(op_type, *args, **attrs)
