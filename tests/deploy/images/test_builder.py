"""Which tool builds, and how image references are read."""

from __future__ import annotations

import pytest

from loopline.deploy.images import find_builder, is_loopback, strip_tag
from loopline.errors import DependencyMissingError, InvalidInputError


def which_of(*present: str):  # type: ignore[no-untyped-def]
    return lambda name: f"/usr/bin/{name}" if name in present else None


def test_docker_is_used_only_when_its_daemon_answers() -> None:
    tools = which_of("docker", "podman", "buildah")
    assert find_builder(which=tools, docker_answers=lambda _: True).kind == "docker"
    assert find_builder(which=tools, docker_answers=lambda _: False).kind == "podman"
    assert find_builder(which=which_of("docker", "buildah"),
                        docker_answers=lambda _: False).kind == "buildah"  # fmt: skip


def test_a_docker_without_daemon_asked_for_by_name_says_so() -> None:
    with pytest.raises(DependencyMissingError, match="its daemon does not answer"):
        find_builder("docker", which=which_of("docker"), docker_answers=lambda _: False)


def test_no_tool_at_all_names_what_to_install_and_the_dockerfile_only_way_out() -> None:
    hint = r"apt-get install -y buildah.*--dockerfile-only"
    with pytest.raises(DependencyMissingError, match=hint):
        find_builder(which=which_of(), docker_answers=lambda _: False)
    with pytest.raises(InvalidInputError, match="Builder 'kaniko' is not one of docker, podman"):
        find_builder("kaniko")


@pytest.mark.parametrize(("reference", "repository"), [
    ("loopline:0.1.0", "loopline"),
    ("127.0.0.1:5000/ml/loopline:1", "127.0.0.1:5000/ml/loopline"),
    ("127.0.0.1:5000/ml/loopline", "127.0.0.1:5000/ml/loopline"),
    ("r.io/loopline@sha256:" + "a" * 64, "r.io/loopline"),
])  # fmt: skip
def test_strip_tag_keeps_the_repository(reference: str, repository: str) -> None:
    assert strip_tag(reference) == repository


def test_loopback_registries_are_told_apart() -> None:
    assert is_loopback("127.0.0.1:5000") and is_loopback("localhost") and is_loopback("[::1]:5000")
    assert not is_loopback("us-central1-docker.pkg.dev")
