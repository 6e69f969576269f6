"""What the ``xgboost`` and ``lightgbm`` flavors share: boosted trees in their library's own format.

A bundle of these flavors holds the library's model file (XGBoost's UBJSON ``model.ubj``,
LightGBM's text ``model.txt``) and ``estimator.json`` (:class:`NativeSpec`: what the
scikit-learn wrapper adds to the booster — classifier or regressor, its classes, which columns
are categorical). Nothing executes at load: the model file is parsed by the library as data and
``estimator.json`` is plain JSON; both are listed with their sha256 in the manifest and checked
on the private copy before either is read (:mod:`loopline.bundle.load`). No pickle, no skops.

A fitted scikit-learn ``transform`` may precede the booster (``transform.skops``, skops with
the allow-listed types, as in the ``python`` flavor): a ``Pipeline`` whose last step is an
XGBoost or LightGBM estimator is saved that way (:func:`split_pipeline`).

The served methods answer exactly as the library's scikit-learn wrappers do:

- regressors and raw boosters: ``predict`` is the library's prediction;
- classifiers: ``predict_proba`` is the booster's probabilities (``[1 - p, p]`` for a binary
  model, the library's own expression), and ``predict`` is ``classes_[argmax(predict_proba)]``
  — what ``LGBMClassifier.predict`` computes and, bit for bit, what ``XGBClassifier.predict``
  answers (its ``p > 0.5`` is the argmax of ``[1 - p, p]``).

Categorical columns (pandas ``category`` at training) arrive as strings or integers and are
converted to ``category`` before the library sees them; both libraries map categories to the
training ones by value, so a value gets its training code and an unseen value is missing, as
in process.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from loopline.bundle import python_flavor, sklearn_flavor
from loopline.bundle.signature import DTYPES, Signature, dtype_name
from loopline.bundle.trust import Trust
from loopline.errors import InvalidInputError
from loopline.types import Json

#: The flavors of this module and the library (top-level module, and extra) each loads with.
FLAVORS = ("xgboost", "lightgbm")
SPEC_FILE = "estimator.json"
KINDS = ("classifier", "regressor", "booster")
#: An ``estimator.json`` larger than this is refused before it is parsed (a few KiB is usual).
MAX_SPEC_BYTES = 16 << 20

Prediction = Callable[[Any], Any]
_LOCATION = re.compile(r"^\[[0-9:]+\] [^ ]+:[0-9]+: ")


def native_flavor(model: Any) -> str | None:
    """``"xgboost"`` / ``"lightgbm"`` for a model of that library (or a scikit-learn
    ``Pipeline`` ending in one), else None. Decided from the type's module: nothing imported."""
    module = type(model).__module__.partition(".")[0]
    if module in FLAVORS:
        return module
    if type(model).__module__ == "sklearn.pipeline" and type(model).__name__ == "Pipeline":
        steps = getattr(model, "steps", None)
        if steps:
            return native_flavor(steps[-1][1])
    return None


def split_pipeline(model: Any, transform: Any) -> tuple[Any, Any]:
    """``(transform, booster model)``: the steps before a ``Pipeline``'s last one become the
    transform (after ``transform``, when one is given too)."""
    if native_flavor(model) is None or type(model).__module__.partition(".")[0] in FLAVORS:
        return transform, model
    from sklearn.pipeline import Pipeline

    steps = list(model.steps)
    final = steps[-1][1]
    before = [s for s in steps[:-1] if s[1] is not None and s[1] != "passthrough"]
    if transform is not None:
        before.insert(0, ("transform", transform))
    if not before:
        return None, final
    return (before[0][1] if len(before) == 1 else Pipeline(before)), final


@dataclass(frozen=True, slots=True)
class NativeSpec:
    """``estimator.json``: what serving a booster needs beside the library's model file.

    Attributes:
        library: ``"xgboost"`` or ``"lightgbm"`` (the bundle's flavor).
        kind: ``"classifier"`` (serves ``predict_proba`` too), ``"regressor"`` or
            ``"booster"`` (a raw Booster: ``predict`` is its prediction).
        classes: a classifier's labels, in the order of the probability columns.
        classes_dtype: their signature dtype name (``int64``, ``string``, …).
        columns: the input columns in order when the model takes a data frame (it has
            categorical columns); empty when it takes a 2-D float array.
        categorical: the columns converted to pandas ``category`` before prediction.
        options: library-specific prediction settings (XGBoost: ``iteration_range`` and
            ``missing``).
    """

    library: str
    kind: str
    classes: tuple[Json, ...] = ()
    classes_dtype: str | None = None
    columns: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    options: Mapping[str, Json] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.library not in FLAVORS:
            raise InvalidInputError(f"library {self.library!r} is not one of {list(FLAVORS)}.")
        if self.kind not in KINDS:
            raise InvalidInputError(f"kind {self.kind!r} is not one of {list(KINDS)}.")
        if self.kind == "classifier" and (len(self.classes) < 2 or self.classes_dtype is None):
            raise InvalidInputError("a classifier needs at least two classes and their dtype.")
        if not all(isinstance(c, str | int | float) for c in self.classes):
            raise InvalidInputError("classes holds a value that is not a string or number.")
        if self.classes_dtype is not None and self.classes_dtype not in DTYPES:
            raise InvalidInputError(f"classes_dtype {self.classes_dtype!r} is not a dtype name.")
        if self.classes_dtype is not None:
            try:
                self.labels()
            except (ValueError, TypeError, OverflowError) as exc:
                raise InvalidInputError(
                    f"classes {list(self.classes)!r} are not {self.classes_dtype} values."
                ) from exc
        unknown = [c for c in self.categorical if c not in self.columns]
        if unknown:
            raise InvalidInputError(f"categorical column {unknown[0]!r} is not in columns.")

    def labels(self) -> np.ndarray[Any, Any]:
        """``classes`` as the array ``predict`` indexes (strings as an object array)."""
        assert self.classes_dtype is not None
        return np.asarray(self.classes, dtype=DTYPES[self.classes_dtype])

    def to_json(self) -> bytes:
        data = {
            "library": self.library,
            "kind": self.kind,
            "classes": list(self.classes),
            "classes_dtype": self.classes_dtype,
            "columns": list(self.columns),
            "categorical": list(self.categorical),
            "options": dict(self.options),
        }
        return json.dumps(data, indent=1, allow_nan=False).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, *, source: str) -> NativeSpec:
        """The spec in ``data`` (read from ``source``, named in errors).

        Raises:
            InvalidInputError: not JSON, or a field is missing or mangled (named).
        """
        if len(data) > MAX_SPEC_BYTES:
            raise InvalidInputError(f"{source} is {len(data)} bytes; the bundle is damaged.")
        try:
            raw = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise InvalidInputError(f"{source} is not valid JSON ({exc}).") from exc
        if not isinstance(raw, dict):
            raise InvalidInputError(f"{source} is not a JSON object; the bundle is damaged.")
        lists = ("classes", "columns", "categorical")
        for name in ("library", "kind", *lists, "options"):
            if name not in raw:
                raise InvalidInputError(f"{source} lacks field {name!r}; the bundle is damaged.")
        for name in lists:
            if not isinstance(raw[name], list):
                raise InvalidInputError(f"{source} field {name!r} is not a list.")
        if not isinstance(raw["options"], dict):
            raise InvalidInputError(f"{source} field 'options' is not an object.")
        for name in ("columns", "categorical"):
            if not all(isinstance(c, str) for c in raw[name]):
                raise InvalidInputError(f"{source} field {name!r} holds a non-string name.")
        try:
            return cls(
                library=str(raw["library"]),
                kind=str(raw["kind"]),
                classes=tuple(raw["classes"]),
                classes_dtype=None if raw.get("classes_dtype") is None else str(
                    raw["classes_dtype"]
                ),
                columns=tuple(raw["columns"]),
                categorical=tuple(raw["categorical"]),
                options=raw["options"],
            )
        except InvalidInputError as exc:
            raise InvalidInputError(f"{source}: {exc} The bundle is damaged.") from exc


def classes_of(model: Any) -> tuple[tuple[Json, ...], str]:
    """A fitted classifier's ``classes_`` as JSON values and their signature dtype name."""
    labels = np.asarray(model.classes_)
    dtype = dtype_name(labels.dtype)
    if dtype == "string":
        return tuple(str(v) for v in labels), dtype
    values = labels.tolist()
    if dtype.startswith("float") and not all(math.isfinite(float(v)) for v in values):
        raise InvalidInputError(f"{type(model).__name__} has a non-finite class label.")
    return tuple(values), dtype


def served_columns(
    signature: Signature | None,
    *,
    model: str,
    n_features: int,
    names: Sequence[str] | None,
    categorical: Sequence[int],
    same: Callable[[str, str], bool] = str.__eq__,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(columns, categorical columns)`` of a data-frame input, or ``((), ())`` for an array.

    ``names`` are the model's feature names (None when it was fitted on an array), compared
    with the signature's columns by ``same``; ``categorical`` the positions of its categorical
    features. ``signature`` None: a transform precedes the model, whose input is the
    transform's array.

    Raises:
        InvalidInputError: the signature's width or names differ from the model's, a string
            column is not a categorical feature, or a tensor signature for categorical data.
    """
    if signature is None:
        return (), ()
    if signature.is_tensor:
        shape = signature.inputs[0].shape
        if len(shape) != 2 or shape[1] != n_features:
            raise InvalidInputError(
                f"The {model} takes {n_features} features but the signature's input "
                f"{signature.inputs[0].name!r} has shape {list(shape)}; use [-1, {n_features}]."
            )
        if categorical and names is not None:
            raise InvalidInputError(
                f"The {model} has categorical features; describe its inputs as named columns "
                "(infer_signature of the training data frame), not as one tensor."
            )
        return (), ()
    cols = tuple(s.name for s in signature.inputs)
    if len(cols) != n_features:
        raise InvalidInputError(
            f"The {model} takes {n_features} features but the signature lists {len(cols)} "
            f"columns {list(cols)}."
        )
    if names is not None and not all(same(c, n) for c, n in zip(cols, names, strict=True)):
        raise InvalidInputError(
            f"The {model} was fitted on columns {list(names)} but the signature lists "
            f"{list(cols)}; they must match in order."
        )
    cats = tuple(cols[i] for i in categorical) if names is not None else ()
    strings = [s.name for s in signature.inputs if s.dtype == "string" and s.name not in cats]
    if strings:
        raise InvalidInputError(
            f"Column {strings[0]!r} holds strings but the {model} does not treat it as a "
            "categorical feature; fit it on a pandas 'category' column (XGBoost: "
            "enable_categorical=True) or encode it in a transform."
        )
    return (cols, cats) if cats else ((), ())


@dataclass(frozen=True, slots=True, eq=False)
class BoosterModel:
    """A regressor or raw booster as served: ``predict`` is the library's prediction.

    ``run`` is the library call (e.g. ``booster.inplace_predict`` with its settings bound);
    ``booster`` the library's Booster.
    """

    spec: NativeSpec
    booster: Any
    run: Prediction

    @property
    def feature_names_in_(self) -> tuple[str, ...] | None:
        """The columns of a model that takes a data frame, else None (it takes an array)."""
        return self.spec.columns or None

    def prepared(self, x: Any) -> Any:
        """``x`` with its categorical columns as pandas ``category``."""
        if not self.spec.categorical:
            return x
        return x.astype(dict.fromkeys(self.spec.categorical, "category"))

    def predict(self, x: Any) -> np.ndarray[Any, Any]:
        return np.asarray(self.run(self.prepared(x)))


@dataclass(frozen=True, slots=True, eq=False)
class BoosterClassifier(BoosterModel):
    """A classifier as served: probabilities once, labels from them."""

    classes_: np.ndarray[Any, Any]

    def predict_proba(self, x: Any) -> np.ndarray[Any, Any]:
        p = np.asarray(self.run(self.prepared(x)))
        if p.ndim == 1:  # binary: the probability of the second class, as both wrappers
            return np.vstack((1.0 - p, p)).transpose()
        return p

    def predict(self, x: Any) -> np.ndarray[Any, Any]:
        return np.asarray(self.classes_.take(np.argmax(self.predict_proba(x), axis=1), axis=0))


def library_message(exc: BaseException) -> str:
    """The first line of a library error, without XGBoost's ``[time] file:line:`` prefix."""
    lines = str(exc).strip().splitlines()
    return _LOCATION.sub("", lines[0]) if lines else type(exc).__name__


@dataclass(frozen=True, slots=True)
class Refusing:
    """``call(x)``, a library's refusal of the values (``error``) raised as InvalidInputError.

    An unseen category (XGBoost), a wrong feature count: the caller's input, answered 400.
    """

    call: Prediction
    library: str
    error: type[Exception]

    def __call__(self, x: Any) -> Any:
        try:
            return self.call(x)
        except self.error as exc:
            raise InvalidInputError(
                f"{self.library} refused the input: {library_message(exc)}"
            ) from exc


def check_classes(spec: NativeSpec, outputs: int, *, shown: str) -> None:
    """Refuse a description whose classes do not match the booster's ``outputs`` per row
    (1 for a binary model)."""
    if spec.kind == "classifier" and len(spec.classes) != max(outputs, 2):
        raise InvalidInputError(
            f"{shown!r} predicts {max(outputs, 2)} classes but its estimator.json lists "
            f"{len(spec.classes)}; the bundle is damaged."
        )


def served(spec: NativeSpec, booster: Any, run: Prediction) -> BoosterModel:
    """The served model of ``spec``: a :class:`BoosterClassifier` for a classifier."""
    if spec.kind == "classifier":
        return BoosterClassifier(spec=spec, booster=booster, run=run, classes_=spec.labels())
    return BoosterModel(spec=spec, booster=booster, run=run)


def check_methods(model: str, kind: str, methods: Sequence[str]) -> None:
    """Refuse a served method the flavor does not serve for ``kind``."""
    allowed = ("predict", "predict_proba") if kind == "classifier" else ("predict",)
    for method in methods:
        if method not in allowed:
            raise InvalidInputError(
                f"The {model} serves {list(allowed)}; {method!r} is not served by its flavor."
            )


def read_file(directory: Path, name: str, *, shown_as: Path | None) -> bytes:
    """The bytes of ``directory/name`` (a verified private copy), read once."""
    try:
        return (directory / name).read_bytes()
    except OSError as exc:
        raise InvalidInputError(
            f"{str((shown_as or directory) / name)!r} cannot be read ({exc})."
        ) from exc


def read_spec(directory: Path, library: str, *, shown_as: Path | None) -> NativeSpec:
    """``estimator.json`` of the private copy ``directory``, which must be for ``library``."""
    source = repr(str((shown_as or directory) / SPEC_FILE))
    spec = NativeSpec.from_json(read_file(directory, SPEC_FILE, shown_as=shown_as), source=source)
    if spec.library != library:
        raise InvalidInputError(
            f"{source} describes a {spec.library} model but the bundle's flavor is {library!r}; "
            "the bundle is damaged."
        )
    return spec


def save_transform(transform: Any, directory: Path) -> list[str]:
    """Write a preceding scikit-learn transform with skops; its file names."""
    if transform is None:
        return []
    return sklearn_flavor.save(transform, directory, name=python_flavor.TRANSFORM_FILE)


def with_transform(
    model: BoosterModel, directory: Path, files: Mapping[str, str], *, trust: Trust,
    shown_as: Path | None,
) -> Any:  # fmt: skip
    """``model``, preceded by the bundle's transform when its manifest lists one."""
    if python_flavor.TRANSFORM_FILE not in files:
        return model
    transform = sklearn_flavor.load(
        directory, name=python_flavor.TRANSFORM_FILE, trust=trust, shown_as=shown_as
    )
    return python_flavor.TransformThen(transform=transform, model=model)
