"""The ``sklearn`` flavor: scikit-learn estimators saved with skops, never pickle.

Loading trusts exact type and function names only (:class:`~loopline.bundle.trust.Trust`),
and reads the file's bytes once: the bytes checked (against ``sha256`` when given, and for
their types) are the bytes deserialised.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from loopline.bundle.trust import BUILT_IN_TRUST, Trust
from loopline.errors import InvalidInputError, require

MODEL_FILE = "model.skops"


def save(model: Any, directory: Path, *, name: str = MODEL_FILE) -> list[str]:
    """Write ``model`` into ``directory/name`` with skops; return the relative file names."""
    require("skops", "sklearn", "Saving scikit-learn models")
    import skops.io as sio

    sio.dump(model, directory / name)
    return [name]


def load(
    directory: Path,
    *,
    name: str = MODEL_FILE,
    trust: Trust = BUILT_IN_TRUST,
    sha256: str | None = None,
    shown_as: Path | None = None,
) -> Any:
    """Load the model, trusting skops' defaults and the exact names of ``trust``.

    The file is read once; with ``sha256`` (hex) its bytes must match it first. Errors name
    ``shown_as / name`` (the bundle a private copy was made of) instead of the path read.

    Raises:
        InvalidInputError: the bytes do not match ``sha256``, or the file names a type that is
            not trusted (named in the message, with the setting that extends the list).
    """
    require("skops", "sklearn", "Loading scikit-learn models")
    import skops.io as sio

    path = (shown_as or directory) / name
    try:
        data = (directory / name).read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"{str(path)!r} cannot be read ({exc}).") from exc
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise InvalidInputError(
            f"{str(path)!r} does not have the recorded sha256 {sha256}; refusing to load it."
        )
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:  # skops raises a variety of errors on corrupt files
        raise InvalidInputError(f"{str(path)!r} is not a readable skops file ({exc}).") from exc
    trusted = trust.check_types(untrusted, repr(str(path)))
    try:
        return sio.loads(data, trusted=trusted)
    except Exception as exc:
        raise InvalidInputError(f"{str(path)!r} could not be loaded by skops ({exc}).") from exc
