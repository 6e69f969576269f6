"""The on-disk model format shared by training (which saves) and serving (which loads).

Key contracts:

- A bundle is a directory with ``loopline-model.yaml`` (format version, flavor, signature,
  served methods, environment, per-file sha256, input example) and the flavor's files.
- ``save_model`` writes atomically (temporary directory, then rename); never pickle: the
  ``sklearn`` flavor uses skops, the ``xgboost`` and ``lightgbm`` flavors the libraries' own
  formats, which load without running code (:mod:`loopline.bundle.native`), and the
  ``onnx`` flavor an ONNX model served by onnxruntime (:mod:`loopline.bundle.onnx_flavor`).
- ``save_model(compile="auto")`` also compiles a scikit-learn model to ONNX and keeps it to
  serve when it answers the check rows as scikit-learn does (equal labels, other outputs
  within 1e-6; :mod:`loopline.bundle.compiler`); ``load_model`` re-checks it on the stored
  example and falls back to scikit-learn, warned, when it does not.
- ``load_model`` reads the bundle once into a private copy, verifies the registry's
  ``expected_digest`` (:func:`tree_digest`, the same ``sha256:<hex>`` the artifact store
  computes) and every file's sha256 on what it read, and loads from that copy. It runs only
  what the operator's :class:`Trust` allows: skops' defaults plus the exact names in
  :data:`TRUSTED_TYPES` (and ``Trust.types``); a ``python``-flavor loader only if it is in
  ``Trust.loaders``. Anything else raises InvalidInputError naming the type or loader.
- ``LoadedModel.predict(batch)`` returns ``{method: array}``; column models receive a data
  frame in signature order, tensor models a 2-D array; a classifier serving ``predict`` and
  ``predict_proba`` runs once (:mod:`loopline.bundle.derived_predict`).
- Imports only ``loopline.errors`` / ``loopline.types`` from loopline.
"""

from loopline.bundle.batch import Batch, coerce_array, coerce_batch
from loopline.bundle.digest import file_sha256, tree_digest
from loopline.bundle.load import load_model
from loopline.bundle.manifest import FORMAT_VERSION, MANIFEST_NAME, Manifest
from loopline.bundle.model import LoadedModel
from loopline.bundle.native import native_flavor
from loopline.bundle.save import save_model
from loopline.bundle.signature import DTYPES, Signature, TensorSpec, infer_signature
from loopline.bundle.trust import TRUSTED_TYPES, Trust

__all__ = [
    "DTYPES",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "TRUSTED_TYPES",
    "Batch",
    "LoadedModel",
    "Manifest",
    "Signature",
    "TensorSpec",
    "Trust",
    "coerce_array",
    "coerce_batch",
    "file_sha256",
    "infer_signature",
    "load_model",
    "native_flavor",
    "save_model",
    "tree_digest",
]
