"""URI validation as a property: whatever a caller writes, an accepted URI stays in the root."""

from __future__ import annotations

import posixpath

from hypothesis import given, settings
from hypothesis import strategies as st

from loopline.artifacts._uri import Root, check_uri, parse_root
from loopline.errors import PathTraversalError

# An S3 root as parse_root makes it when s3fs is installed (it is not needed to validate).
S3 = Root(url="s3://b/p", scheme="s3", path="b/p", prefix="s3://b/p/")
ROOTS = [parse_root("/srv/artifacts"), parse_root("memory:///bucket"), S3]
PIECES = st.sampled_from(
    ["..", ".", "/", "//", "%2e", "%2f", "\\", "\x00", "a", "Model", "x.y", "_", "-", ":", "~"]
)
SUFFIX = st.lists(st.one_of(PIECES, st.text(max_size=4)), max_size=12).map("".join)


@settings(max_examples=400, deadline=None)
@given(root_index=st.integers(0, len(ROOTS) - 1), suffix=SUFFIX, absolute=st.booleans())
def test_an_accepted_uri_never_leaves_the_root(
    root_index: int, suffix: str, absolute: bool
) -> None:
    root = ROOTS[root_index]
    uri = (root.path + "/" + suffix) if absolute and root.is_local else (root.url + "/" + suffix)
    try:
        accepted = check_uri(uri, root)
    except PathTraversalError as exc:
        assert repr(uri) in str(exc) and repr(root.url) in str(exc)
        return
    assert accepted.startswith(root.prefix)
    path = root.fs_path(accepted)
    assert posixpath.normpath(path) == path
    assert path.startswith(root.path.rstrip("/") + "/")
    assert not any(part.startswith(".") for part in path[len(root.path) :].split("/"))
    assert check_uri(accepted, root) == accepted


def test_other_buckets_and_prefix_siblings_are_outside() -> None:
    root = S3
    for uri in ["s3://b/p2/x", "s3://b/x", "s3://c/p/x", "gs://b/p/x", "s3://b/p/../q/x"]:
        try:
            check_uri(uri, root)
        except PathTraversalError:
            continue
        raise AssertionError(f"{uri!r} was accepted under {root.url!r}")
