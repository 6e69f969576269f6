"""Load a pipeline definition from a Python file (``loopline run FILE``)."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

from loopline.errors import InvalidDefinitionError, NotFoundError
from loopline.pipeline.graph import Pipeline


def load_pipeline(path: str | Path, *, attribute: str | None = None) -> Pipeline:
    """Import ``path`` and return its pipeline.

    The file must define exactly one ``Pipeline`` at module level (or name it with
    ``attribute``). The file's directory is put on ``sys.path`` so sibling modules import.

    Raises:
        NotFoundError: the file does not exist.
        InvalidDefinitionError: the file defines no pipeline, several, or fails to import.
    """
    file = Path(path).resolve()
    if not file.is_file():
        raise NotFoundError(f"Pipeline file {str(path)!r} does not exist.")
    folder = str(file.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    digest = hashlib.sha256(str(file).encode()).hexdigest()[:8]
    name = f"loopline_user_{file.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise InvalidDefinitionError(f"{str(path)!r} is not a Python file loopline can import.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except InvalidDefinitionError:
        raise
    except Exception as exc:
        raise InvalidDefinitionError(
            f"Importing pipeline file {str(path)!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    if attribute is not None:
        found = getattr(module, attribute, None)
        if not isinstance(found, Pipeline):
            raise InvalidDefinitionError(f"{str(path)!r} has no Pipeline named {attribute!r}.")
        return found
    pipelines = {k: v for k, v in vars(module).items() if isinstance(v, Pipeline)}
    if len(pipelines) != 1:
        what = "no Pipeline" if not pipelines else f"several: {', '.join(sorted(pipelines))}"
        raise InvalidDefinitionError(
            f"{str(path)!r} defines {what}; define exactly one Pipeline at module level "
            "or choose one with --pipeline NAME."
        )
    return next(iter(pipelines.values()))
