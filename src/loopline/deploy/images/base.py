"""A Debian base image with Python, made with debootstrap, for machines that reach no
registry with Python images (no docker.io), but reach a Debian mirror.

``ensure_base_image`` returns ``localhost/loopline-base:<suite>`` at once when it is in the
builder's storage; else it imports the cached root file system tarball (``<cache>/
loopline-base-<suite>.tar``); else it runs ``debootstrap --variant=minbase`` with
``python3`` and ``python3-venv`` (about 30 s and 200 MB), removes apt's caches, saves the
tarball to the cache and imports it. The image has ``LANG=C.UTF-8`` and ``CMD ["python3"]``.
Elsewhere the Dockerfile's ``BASE_IMAGE`` default, ``python:3.11-slim``, is used instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from loopline.deploy.images.builder import Builder, Progress, run_streamed
from loopline.errors import DependencyMissingError

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3", "python3-venv")
DOCKER_HUB = "https://registry-1.docker.io/v2/"


def base_image_name(suite: str = SUITE) -> str:
    """The local name of the debootstrap base of ``suite``."""
    return f"localhost/loopline-base:{suite}"


def docker_hub_reachable(timeout: float = 3.0, url: str = DOCKER_HUB) -> bool:
    """Docker Hub's registry answers (401 counts: it is there and wants a token)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def ensure_base_image(
    builder: Builder,
    *,
    cache: Path,
    progress: Progress,
    suite: str = SUITE,
    mirror: str = MIRROR,
) -> str:
    """The debootstrap base image of ``suite`` in ``builder``'s storage, made if missing.

    Raises:
        DependencyMissingError: it must be made and debootstrap is not installed.
        BackendError: debootstrap or the import failed.
    """
    name = base_image_name(suite)
    if builder.has_image(name):
        return name
    tarball = cache / f"loopline-base-{suite}.tar"
    if not tarball.is_file():
        _debootstrap(tarball, suite=suite, mirror=mirror, progress=progress)
    progress(f"importing {tarball} as {name}")
    _import(builder, tarball, name, progress=progress)
    return name


def _debootstrap(tarball: Path, *, suite: str, mirror: str, progress: Progress) -> None:
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise DependencyMissingError(
            "No registry with Python images answers here, so loopline build makes a Debian base "
            "with debootstrap, which is not installed; install it with: apt-get install -y "
            "debootstrap (or pass --base-image with an image you have)."
        )
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="loopline-rootfs-", dir=tarball.parent) as tmp:
        root = Path(tmp) / "rootfs"
        progress(f"debootstrap {suite} with {', '.join(PACKAGES)} (once; cached at {tarball})")
        run_streamed(
            [debootstrap, "--variant=minbase", f"--include={','.join(PACKAGES)}", suite,
             str(root), mirror],
            progress=progress, what=f"debootstrap {suite}",
        )  # fmt: skip
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (root / leftover).glob("*"):
                if entry.is_file():
                    entry.unlink()
        partial = tarball.with_suffix(".partial")
        run_streamed(
            ["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."],
            progress=progress, what="archiving the root file system",
        )  # fmt: skip
        os.replace(partial, tarball)


def _import(builder: Builder, tarball: Path, name: str, *, progress: Progress) -> None:
    exe = builder.executable
    if builder.kind == "buildah":
        import subprocess

        made = subprocess.run([exe, "from", "scratch"], capture_output=True, text=True,
                              check=True)  # fmt: skip
        container = made.stdout.strip()
        try:
            run_streamed([exe, "add", container, str(tarball), "/"], progress=progress,
                         what="buildah add of the root file system")  # fmt: skip
            run_streamed(
                [exe, "config", "--env", "LANG=C.UTF-8", "--cmd", '["python3"]', container],
                progress=progress, what="buildah config",
            )  # fmt: skip
            run_streamed([exe, "commit", "--format", "oci", container, name], progress=progress,
                         what=f"buildah commit of {name}")  # fmt: skip
        finally:
            subprocess.run([exe, "rm", container], capture_output=True, check=False)
        return
    run_streamed(
        [exe, "import", "--change", "ENV LANG=C.UTF-8", "--change", 'CMD ["python3"]',
         str(tarball), name],
        progress=progress, what=f"{builder.kind} import of {name}",
    )  # fmt: skip
