"""The image builder on this machine: docker (when its daemon answers), podman, or buildah.

Each is driven through its command line, its output streamed line by line to a ``progress``
callback as it builds. podman and buildah build with ``--isolation chroot`` (no OCI runtime
is needed for ``RUN``, and no daemon) and ``--layers`` (unchanged layers are reused). The
image id comes from ``--iidfile``; a push reports the manifest digest of what the registry
stored (``--digestfile``, or docker's ``RepoDigests``).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from loopline.errors import BackendError, DependencyMissingError, InvalidInputError

KINDS = ("docker", "podman", "buildah")
INSTALL_HINT = "apt-get install -y buildah podman runc (or install Docker)"
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Builder:
    """One container tool: ``kind`` is docker, podman or buildah; ``executable`` its path."""

    kind: str
    executable: str

    def build_argv(
        self, context: Path, tag: str, *, build_args: Mapping[str, str], iidfile: Path
    ) -> list[str]:
        """The command that builds ``context``'s Dockerfile as ``tag``."""
        verb = ["bud"] if self.kind == "buildah" else ["build"]
        argv = [self.executable, *verb]
        if self.kind != "docker":
            argv += ["--isolation", "chroot", "--layers"]
        argv += ["--iidfile", str(iidfile), "--tag", tag]
        for key, value in sorted(build_args.items()):
            argv += ["--build-arg", f"{key}={value}"]
        return [*argv, str(context)]

    def exists_argv(self, image: str) -> list[str]:
        """A command that exits 0 exactly when ``image`` is in local storage."""
        if self.kind == "buildah":
            return [self.executable, "inspect", "--type", "image", image]
        if self.kind == "podman":
            return [self.executable, "image", "exists", image]
        return [self.executable, "image", "inspect", image]

    def has_image(self, image: str) -> bool:
        """``image`` is in this tool's local storage."""
        done = subprocess.run(self.exists_argv(image), capture_output=True, check=False)
        return done.returncode == 0

    def build(
        self, context: Path, tag: str, *, build_args: Mapping[str, str], progress: Progress
    ) -> str:
        """Build ``context`` as ``tag``, streaming the tool's output; return the image id.

        Raises:
            BackendError: the build failed (the message carries its last lines).
        """
        with tempfile.TemporaryDirectory(prefix="loopline-build-") as tmp:
            iidfile = Path(tmp) / "iid"
            argv = self.build_argv(context, tag, build_args=build_args, iidfile=iidfile)
            run_streamed(argv, progress=progress, what=f"{self.kind} build of {tag}")
            image_id = iidfile.read_text().strip()
        return image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"

    def push(self, image: str, destination: str, *, progress: Progress) -> str:
        """Push local ``image`` to ``destination`` (``host/repo:tag``); return the manifest
        digest the registry stored. A loopback registry (127.0.0.1, localhost, [::1]) is
        spoken to over plain HTTP, as Docker does.

        Raises:
            BackendError: the push failed.
        """
        if self.kind == "docker":
            run_streamed([self.executable, "tag", image, destination], progress=progress,
                         what=f"docker tag {destination}")  # fmt: skip
            run_streamed([self.executable, "push", destination], progress=progress,
                         what=f"docker push {destination}")  # fmt: skip
            return _docker_repo_digest(self.executable, destination)
        with tempfile.TemporaryDirectory(prefix="loopline-push-") as tmp:
            digestfile = Path(tmp) / "digest"
            argv = [self.executable, "push", "--digestfile", str(digestfile)]
            if is_loopback(registry_host(destination)):
                argv.append("--tls-verify=false")
            argv += [image, f"docker://{destination}"]
            run_streamed(argv, progress=progress, what=f"{self.kind} push to {destination}")
            return digestfile.read_text().strip()


def find_builder(
    preferred: str | None = None,
    *,
    which: Callable[[str], str | None] = shutil.which,
    docker_answers: Callable[[str], bool] | None = None,
) -> Builder:
    """The tool to build with: ``preferred`` when given, else docker if its daemon answers,
    else podman, else buildah.

    Raises:
        InvalidInputError: ``preferred`` is not one of docker, podman, buildah.
        DependencyMissingError: the tool asked for (or every tool) is missing.
    """
    answers = docker_answers or _docker_answers
    if preferred is not None and preferred not in KINDS:
        raise InvalidInputError(
            f"Builder {preferred!r} is not one of {', '.join(KINDS)}; pick one of them."
        )
    for kind in [preferred] if preferred else list(KINDS):
        assert kind is not None
        path = which(kind)
        if path is None:
            continue
        if kind == "docker" and not answers(path):
            if preferred == "docker":
                raise DependencyMissingError(
                    f"docker is installed at {path} but its daemon does not answer "
                    "(docker info failed); start it, or build with --builder podman or buildah."
                )
            continue
        return Builder(kind, path)
    wanted = preferred or "docker (with a daemon), podman or buildah"
    raise DependencyMissingError(
        f"Building an image needs {wanted}, and none is on PATH; install one with: "
        f"{INSTALL_HINT}. Or write the Dockerfile only with --dockerfile-only."
    )


def _docker_answers(executable: str) -> bool:
    try:
        done = subprocess.run([executable, "info"], capture_output=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def _docker_repo_digest(executable: str, reference: str) -> str:
    done = subprocess.run(
        [executable, "image", "inspect", "--format", "{{range .RepoDigests}}{{println .}}{{end}}",
         reference],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    repository = strip_tag(reference)
    for line in done.stdout.splitlines():
        name, _, digest = line.strip().partition("@")
        if name == repository and digest.startswith("sha256:"):
            return digest
    raise BackendError(
        f"docker pushed {reference} but reports no digest for it ({done.stderr.strip()!r}); "
        "check the push with docker image inspect."
    )


def run_streamed(argv: Sequence[str], *, progress: Progress, what: str, tail: int = 30) -> None:
    """Run ``argv``, passing each line of its output (stdout and stderr) to ``progress``.

    Raises:
        BackendError: it exited non-zero; the message names ``what`` and its last lines.
    """
    last: deque[str] = deque(maxlen=tail)
    try:
        proc = subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True, errors="replace", bufsize=1,
        )  # fmt: skip
    except OSError as exc:
        raise BackendError(f"{what} could not start {argv[0]!r}: {exc}") from exc
    assert proc.stdout is not None
    with proc:
        for line in proc.stdout:
            line = line.rstrip("\n")
            last.append(line)
            progress(line)
    if proc.returncode != 0:
        output = "\n".join(last)
        raise BackendError(f"{what} failed (exit {proc.returncode}); its last lines:\n{output}")


def registry_host(reference: str) -> str:
    """The registry host of ``host[:port]/repo[:tag]`` (the part before the first '/')."""
    first, sep, _ = reference.partition("/")
    if not sep or not ("." in first or ":" in first or first == "localhost"):
        return "docker.io"
    return first


def is_loopback(host: str) -> bool:
    """``host`` (with an optional port) is this machine: 127.x.y.z, localhost or [::1]."""
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return name in ("localhost", "[::1]") or name.startswith("127.")


def strip_tag(reference: str) -> str:
    """``host/repo:tag`` (or ``…@sha256:…``) without its tag or digest."""
    reference = reference.split("@", 1)[0]
    slash = reference.rfind("/")
    colon = reference.rfind(":")
    return reference[:colon] if colon > slash else reference
