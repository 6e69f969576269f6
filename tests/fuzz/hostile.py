"""Code a hostile bundle would make a model server run: each piece writes the marker file
named by ``$LOOPLINE_FUZZ_MARKER`` when it is called, never when it is imported."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

MARKER_VARIABLE = "LOOPLINE_FUZZ_MARKER"


def touch_marker(x: Any = None) -> Any:
    """Write the marker (then behave as the identity, as a FunctionTransformer's func)."""
    Path(os.environ[MARKER_VARIABLE]).write_text("code from a bundle ran\n")
    return x


class SelfLoading:
    """A python-flavor loader whose ``load`` writes the marker."""

    @classmethod
    def load(cls, directory: Path) -> Any:
        return touch_marker(cls())

    def predict(self, x: Any) -> Any:
        return touch_marker(x)


class Touches:
    """Unpickling this writes the marker (what a pickle in a hostile bundle would do)."""

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (touch_marker, ())
