"""The on-disk model format shared by training (which saves) and serving (which loads).

Key contracts:

- A bundle is a directory with ``loopline-model.yaml`` (format version, flavor, signature,
  served methods, environment, per-file sha256, input example) and the flavor's files.
- ``save_model`` writes atomically (temporary directory, then rename); never pickle: the
  ``sklearn`` flavor uses skops.
- ``load_model`` verifies the registry's ``expected_digest`` (:func:`tree_digest`, the same
  ``sha256:<hex>`` the artifact store computes), every file's sha256, and trusts only types
  from :data:`ALLOWED_MODULES` (sklearn, numpy, scipy, loopline); anything else raises
  InvalidInputError naming the type.
- ``LoadedModel.predict(batch)`` returns ``{method: array}``; column models receive a data
  frame in signature order, tensor models a 2-D array.
- Imports only ``loopline.errors`` / ``loopline.types`` from loopline.
"""

from loopline.bundle.batch import Batch, coerce_array, coerce_batch
from loopline.bundle.digest import file_sha256, tree_digest
from loopline.bundle.load import load_model
from loopline.bundle.manifest import FORMAT_VERSION, MANIFEST_NAME, Manifest
from loopline.bundle.model import LoadedModel
from loopline.bundle.save import save_model
from loopline.bundle.signature import DTYPES, Signature, TensorSpec, infer_signature
from loopline.bundle.sklearn_flavor import ALLOWED_MODULES

__all__ = [
    "ALLOWED_MODULES",
    "DTYPES",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "Batch",
    "LoadedModel",
    "Manifest",
    "Signature",
    "TensorSpec",
    "coerce_array",
    "coerce_batch",
    "file_sha256",
    "infer_signature",
    "load_model",
    "save_model",
    "tree_digest",
]
