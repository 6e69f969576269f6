"""Artifact store roots and URI validation: nothing outside the root, ever.

A URI is accepted only if it is ``<root>/<segment>/<segment>…`` where every segment is made
of ASCII letters, digits, ``_``, ``.``, ``=`` or ``-``, does not start with ``.`` (``.``,
``..`` and the store's own ``.staging`` area) and is not a reserved ``_LOOPLINE*`` marker.
Percent-encoding, backslashes, control characters and NUL bytes are refused outright, so an
encoded ``..`` can never be decoded into a traversal by a lower layer.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from loopline.errors import (
    DependencyMissingError,
    InvalidInputError,
    PathTraversalError,
    require,
)

_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.=-]{0,254}$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
RESERVED_PREFIX = "_LOOPLINE"
LOCAL_SCHEMES = ("file", "local")
#: The object stores loopline has an extra for: scheme → (the fsspec backend, the extra).
OBJECT_STORE_EXTRAS = {
    "s3": ("s3fs", "s3"),
    "s3a": ("s3fs", "s3"),
    "gs": ("gcsfs", "gcs"),
    "gcs": ("gcsfs", "gcs"),
    "az": ("adlfs", "azure"),
    "abfs": ("adlfs", "azure"),
}


@dataclass(frozen=True, slots=True)
class Root:
    """A normalised store root."""

    url: str  # "file:///abs/path", "memory:///x", "s3://bucket/prefix"
    scheme: str
    path: str  # the file-system path of the root ("/abs/path", "/x", "bucket/prefix")
    prefix: str  # every artifact URI starts with this ("<url>/")

    @property
    def is_local(self) -> bool:
        """True for a local directory (handled with os-level atomic renames)."""
        return self.scheme == "file"

    def fs_path(self, uri: str) -> str:
        """The file-system path of a validated URI."""
        return self.path.rstrip("/") + "/" + uri[len(self.prefix) :]


def parse_root(root: str) -> Root:
    """Normalise a local path or fsspec URL into a :class:`Root` (no I/O).

    Raises:
        InvalidInputError: the root is empty, chained (``a::b``), or has a bad scheme/host.
        DependencyMissingError: the fsspec backend for the scheme is not installed.
    """
    if not isinstance(root, str) or not root or "\x00" in root or "\\" in root:
        raise InvalidInputError(
            f"Artifact store root {root!r} is not valid; give a local directory or an fsspec "
            "URL such as 's3://bucket/prefix'."
        )
    if "::" in root:
        raise InvalidInputError(
            f"Artifact store root {root!r} is a chained fsspec URL, which is not supported; "
            "give a single local directory or URL."
        )
    if "://" not in root:
        path = os.path.normpath(os.path.abspath(os.path.expanduser(root)))
        return _local_root(path)
    scheme, _, rest = root.partition("://")
    if not _SCHEME.match(scheme):
        raise InvalidInputError(
            f"Artifact store root {root!r} has scheme {scheme!r}; schemes are lower-case, "
            "as in 'file://' or 's3://'."
        )
    if scheme in LOCAL_SCHEMES:
        host, slash, path = rest.partition("/")
        if host not in ("", "localhost") or not slash:
            raise InvalidInputError(
                f"Artifact store root {root!r} names host {host!r}; local roots are "
                "'file:///absolute/path'."
            )
        return _local_root(os.path.normpath("/" + path))
    import fsspec  # imported on first remote root: local stores never pay for it

    extra = OBJECT_STORE_EXTRAS.get(scheme)
    if extra is not None:
        require(extra[0], extra[1], f"Artifact store root {root!r}")
    try:
        cls = fsspec.get_filesystem_class(scheme)
    except ImportError as exc:
        raise DependencyMissingError(
            f"Artifact store root {root!r} needs the fsspec backend for {scheme!r}, which is "
            f"not installed ({exc}). Install the package fsspec names."
        ) from exc
    except ValueError as exc:
        raise InvalidInputError(
            f"Artifact store root {root!r} uses unknown scheme {scheme!r}; use a local "
            "directory or a scheme fsspec knows (s3, gs, az, memory, …)."
        ) from exc
    stripped = str(cls._strip_protocol(root)).rstrip("/")
    return Root(
        url=f"{scheme}://{stripped}", scheme=scheme, path=stripped, prefix=f"{scheme}://{stripped}/"
    )


def _local_root(path: str) -> Root:
    base = path.rstrip("/")
    return Root(url="file://" + path, scheme="file", path=path, prefix=f"file://{base}/")


def segment_problem(segment: str) -> str | None:
    """Why a path segment is not allowed in an artifact URI or key, or None if it is fine."""
    if segment == "":
        return "has an empty path segment ('//')"
    if segment in (".", ".."):
        return f"contains a {segment!r} segment"
    if segment.startswith("."):
        return f"has a hidden segment {segment!r} (reserved for the store's staging area)"
    if segment.startswith(RESERVED_PREFIX):
        return f"names the reserved marker {segment!r}"
    if not _SEGMENT.match(segment):
        return (
            f"has a segment {segment!r} with characters other than ASCII letters, digits, "
            "'_', '.', '=' or '-'"
        )
    return None


def check_uri(uri: str, root: Root) -> str:
    """Return the normalised URI (no trailing slash) if it lies inside ``root``.

    Raises:
        PathTraversalError: naming the URI, the reason and the root.
    """
    reason = _problem(uri, root)
    if reason is not None:
        raise PathTraversalError(
            f"Artifact URI {uri!r} {reason}; artifact URIs must lie inside the store root "
            f"{root.url!r}. Use a URI returned by allocate()."
        )
    candidate = "file://" + uri if uri.startswith("/") else uri
    return candidate.rstrip("/")


def _problem(uri: object, root: Root) -> str | None:
    if not isinstance(uri, str):
        return f"is a {type(uri).__name__}, not a string"
    if "\x00" in uri:
        return "contains a NUL byte"
    if any(ord(c) < 32 or ord(c) == 127 for c in uri):
        return "contains a control character"
    if "\\" in uri:
        return "contains a backslash"
    if "%" in uri:
        return "is percent-encoded (artifact URIs are never encoded, so '%2e%2e' cannot hide '..')"
    if ".." in uri.split("/"):
        return "contains a '..' segment"
    candidate = uri
    if "://" not in uri:
        if not uri.startswith("/"):
            return "is a relative path, not a URL"
        if not root.is_local:
            return "is a local path, but the store root is remote"
        candidate = "file://" + uri
    scheme = candidate.partition("://")[0]
    if scheme != root.scheme:
        return f"uses scheme {scheme!r}, but the store root uses {root.scheme!r}"
    if not candidate.startswith(root.prefix):
        return "is outside the store root"
    rel = candidate[len(root.prefix) :]
    if rel.endswith("/"):
        rel = rel[:-1]
    if not rel:
        return "is the store root itself, not an artifact inside it"
    for segment in rel.split("/"):
        problem = segment_problem(segment)
        if problem is not None:
            return problem
    return None
