"""The wheelhouse: the image's wheels, downloaded where ``loopline build`` runs.

With it (the default), the builder installs from ``wheels/`` and ``build-wheels/`` in the
context with ``--no-index``: the build needs no network, uses this machine's pip
configuration (index, proxy, certificates) to fetch, and installs exactly the files fetched
here. ``wheels/`` holds the pinned requirements (binary wheels only: the image has no
compiler); ``build-wheels/`` what building loopline's wheel needs (its ``build-system``
requirements), or loopline's own released wheel when it is not built from source.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from loopline.deploy.images.builder import Progress, run_streamed
from loopline.deploy.images.dockerfile import BUILD_WHEELS, REQUIREMENTS, WHEELS
from loopline.deploy.images.requirements import PROJECT


def download_wheels(
    context: Path, *, source: Path | None, version: str, progress: Progress
) -> None:
    """Fill ``context/wheels`` from ``context/requirements.txt`` and ``context/build-wheels``
    with what builds loopline (``source``'s build requirements, or the released wheel).

    Raises:
        BackendError: pip could not download them (its last lines are in the message).
    """
    pip = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check"]
    progress(f"downloading the pinned wheels into {context / WHEELS}")
    run_streamed(
        [*pip, "--no-deps", "--only-binary=:all:", "--dest", str(context / WHEELS),
         "--requirement", str(context / REQUIREMENTS)],
        progress=progress, what="pip download of the pinned requirements",
    )  # fmt: skip
    if source is not None:
        with (source / "pyproject.toml").open("rb") as f:
            wanted = list(tomllib.load(f).get("build-system", {}).get("requires", []))
        argv = [*pip, "--only-binary=:all:", "--dest", str(context / BUILD_WHEELS), *wanted]
    else:
        argv = [*pip, "--no-deps", "--only-binary=:all:", "--dest", str(context / BUILD_WHEELS),
                f"{PROJECT}=={version}"]  # fmt: skip
    (context / BUILD_WHEELS).mkdir(exist_ok=True)
    run_streamed(argv, progress=progress, what="pip download of what builds loopline")
