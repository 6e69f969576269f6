"""The ``sklearn`` flavor: scikit-learn estimators saved with skops, never pickle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loopline.errors import InvalidInputError, require

MODEL_FILE = "model.skops"

#: Top-level modules whose types a bundle may instantiate on load.
ALLOWED_MODULES: tuple[str, ...] = ("sklearn", "numpy", "scipy", "loopline")


def save(model: Any, directory: Path, *, name: str = MODEL_FILE) -> list[str]:
    """Write ``model`` into ``directory/name`` with skops; return the relative file names."""
    require("skops", "sklearn", "Saving scikit-learn models")
    import skops.io as sio

    sio.dump(model, directory / name)
    return [name]


def _allowed(type_name: str) -> bool:
    top = type_name.split(".", 1)[0]
    return top in ALLOWED_MODULES


def load(directory: Path, *, name: str = MODEL_FILE) -> Any:
    """Load the model, trusting only types from :data:`ALLOWED_MODULES`.

    Raises:
        InvalidInputError: the file names a type outside the allow-list (named in the message).
    """
    require("skops", "sklearn", "Loading scikit-learn models")
    import skops.io as sio

    path = directory / name
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises a variety of errors on corrupt files
        raise InvalidInputError(f"{str(path)!r} is not a readable skops file ({exc}).") from exc
    refused = sorted(t for t in untrusted if not _allowed(t))
    if refused:
        raise InvalidInputError(
            f"{str(path)!r} contains type {refused[0]!r}"
            + (f" (and {len(refused) - 1} more)" if len(refused) > 1 else "")
            + f", whose module is not in the allow-list {list(ALLOWED_MODULES)}; "
            "loopline does not load it. Re-save the model using only scikit-learn, NumPy "
            "and SciPy types."
        )
    try:
        return sio.load(path, trusted=untrusted)
    except Exception as exc:
        raise InvalidInputError(f"{str(path)!r} could not be loaded by skops ({exc}).") from exc
