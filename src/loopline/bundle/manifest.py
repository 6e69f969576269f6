"""``loopline-model.yaml``: what a bundle holds and how to load it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from loopline.bundle.onnx_part import OnnxPart
from loopline.bundle.signature import Signature
from loopline.errors import InvalidInputError, NotFoundError

MANIFEST_NAME = "loopline-model.yaml"
FORMAT_VERSION = 1
INPUT_KINDS = ("frame", "array")
#: A manifest larger than this is refused before it is parsed (save_model writes a few KiB).
MAX_MANIFEST_BYTES = 16 << 20


@dataclass(frozen=True, slots=True)
class Manifest:
    """The parsed manifest of a model bundle.

    Attributes:
        flavor: how the model files are read (``"sklearn"``).
        signature: inputs and outputs.
        methods: the model methods served, each also an output name (``predict``, …).
        input_kind: ``"frame"`` (the model gets a data frame with columns in signature order)
            or ``"array"`` (a 2-D float array).
        files: relative path → sha256 hex of every flavor file.
        environment: ``python`` and package versions at save time.
        metadata: free-form JSON-like data from the caller.
        example: an input example (input name → list of values) used for warm-up, or None.
        loader: for flavor ``python``, the ``module:QualName`` whose ``load`` reads the model.
        has_transform: for flavor ``python``, whether a skops transform precedes the model.
        onnx: the ONNX model of the bundle (flavor ``onnx``, or a compiled scikit-learn
            model) and which path serves, or None (:class:`~loopline.bundle.onnx_part.OnnxPart`).
    """

    flavor: str
    signature: Signature
    methods: tuple[str, ...]
    input_kind: str
    files: Mapping[str, str]
    environment: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    example: Mapping[str, list[Any]] | None = None
    format_version: int = FORMAT_VERSION
    loader: str | None = None
    has_transform: bool = False
    onnx: OnnxPart | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "flavor": self.flavor,
            "signature": self.signature.to_dict(),
            "methods": list(self.methods),
            "input_kind": self.input_kind,
            "environment": dict(self.environment),
            "files": dict(sorted(self.files.items())),
            "metadata": dict(self.metadata),
            "example": None if self.example is None else dict(self.example),
            **({"loader": self.loader, "has_transform": self.has_transform} if self.loader else {}),
            **({"onnx": self.onnx.to_dict()} if self.onnx is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: Any, *, source: str) -> Manifest:
        if not isinstance(data, dict):
            raise InvalidInputError(f"{source} is not a mapping; the bundle is damaged.")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise InvalidInputError(
                f"{source} has format_version {version!r}; this loopline reads version "
                f"{FORMAT_VERSION}. Upgrade loopline or re-save the model."
            )
        try:
            files = data["files"]
            methods = tuple(data["methods"])
            if not methods or not all(isinstance(m, str) and m for m in methods):
                raise TypeError("methods")
            if not isinstance(files, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in files.items()
            ):
                raise TypeError("files")
            if data["input_kind"] not in INPUT_KINDS:
                raise TypeError("input_kind")
            return cls(
                flavor=str(data["flavor"]),
                signature=Signature.from_dict(data["signature"]),
                methods=methods,
                input_kind=data["input_kind"],
                files=files,
                environment=dict(data.get("environment") or {}),
                metadata=dict(data.get("metadata") or {}),
                example=data.get("example"),
                loader=None if data.get("loader") is None else str(data["loader"]),
                has_transform=bool(data.get("has_transform", False)),
                onnx=None if data.get("onnx") is None else OnnxPart.from_dict(data["onnx"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"{source} lacks or mangles field {exc.args[0] if exc.args else '?'!r}; "
                "the bundle is damaged, re-save the model."
            ) from exc

    def write(self, directory: Path) -> None:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)
        (directory / MANIFEST_NAME).write_text(text, encoding="utf-8")

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST_NAME
        if not path.is_file():
            raise NotFoundError(
                f"{str(directory)!r} is not a model bundle: it has no {MANIFEST_NAME}. "
                "Save models with loopline.bundle.save_model."
            )
        return cls.parse(path.read_bytes(), path=path)

    @classmethod
    def parse(cls, text: bytes, *, path: Path) -> Manifest:
        """The manifest in ``text``, read from ``path`` (named in errors).

        Raises:
            InvalidInputError: not UTF-8 YAML, or a field is missing or mangled.
        """
        if len(text) > MAX_MANIFEST_BYTES:
            raise InvalidInputError(
                f"{str(path)!r} is {len(text)} bytes; a manifest holds at most "
                f"{MAX_MANIFEST_BYTES} (its example is at most 5 rows). The bundle is damaged."
            )
        try:
            data = yaml.safe_load(text.decode("utf-8"))
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            raise InvalidInputError(f"{str(path)!r} is not valid YAML: {exc}.") from exc
        except RecursionError:
            raise InvalidInputError(
                f"{str(path)!r} nests too deeply to be a manifest; the bundle is damaged."
            ) from None
        return cls.from_dict(data, source=repr(str(path)))
