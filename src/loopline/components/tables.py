"""Reading input files and Examples splits as Arrow tables.

Input formats by file extension: ``.csv`` (and ``.csv.gz``), ``.parquet``/``.pq``, and Arrow
IPC (``.arrow``, ``.feather``, ``.ipc``). Every failure names the file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.parquet as pq

from loopline.errors import InvalidInputError, NotFoundError

FORMATS = {
    ".csv": "csv",
    ".gz": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
}


def file_format(path: Path) -> str:
    """``csv``, ``parquet`` or ``arrow`` from the file name; InvalidInputError otherwise."""
    suffixes = path.suffixes
    fmt = FORMATS.get(path.suffix.lower())
    if (
        fmt == "csv"
        and path.suffix.lower() == ".gz"
        and (len(suffixes) < 2 or suffixes[-2] != ".csv")
    ):
        fmt = None
    if fmt is None:
        raise InvalidInputError(
            f"Input file {str(path)!r} has no known format; name it *.csv, *.csv.gz, "
            "*.parquet or *.arrow/*.feather."
        )
    return fmt


def read_file(path: Path) -> pa.Table:
    """Read one input file; InvalidInputError (naming the file) if it cannot be parsed."""
    fmt = file_format(path)
    try:
        if fmt == "csv":
            table = pacsv.read_csv(path)
        elif fmt == "parquet":
            table = pq.read_table(path)
        else:
            table = feather.read_table(path)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise InvalidInputError(
            f"Input file {str(path)!r} is not valid {fmt.upper()}: {exc}. Fix or remove it."
        ) from exc
    if table.num_columns == 0:
        raise InvalidInputError(f"Input file {str(path)!r} has no columns.")
    return table


def read_files(root: Path, files: Sequence[str]) -> pa.Table:
    """Read and concatenate files (relative to ``root``); their columns must agree."""
    tables = [read_file(root / f) for f in files]
    first = tables[0]
    check_same_columns(files, [t.column_names for t in tables])
    try:
        return pa.concat_tables(
            [t.select(first.column_names) for t in tables], promote_options="permissive"
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidInputError(
            f"The input files {list(files)} have incompatible column types: {exc}."
        ) from exc


def check_same_columns(files: Sequence[str], columns: Sequence[Sequence[str]]) -> None:
    """Every file of a span has the first file's columns (in any order); else an error naming
    the file that differs and both column sets."""
    for f, names in zip(files[1:], columns[1:], strict=True):
        if set(names) != set(columns[0]):
            raise InvalidInputError(
                f"Input file {f!r} has columns {sorted(names)} but {files[0]!r} has "
                f"{sorted(columns[0])}; every file of a span must have the same columns."
            )


def split_path(examples_dir: Path, split: str) -> Path:
    """Where ExampleGen writes split ``split``: ``<dir>/<split>.parquet``."""
    return examples_dir / f"{split}.parquet"


def read_split(examples_dir: Path, split: str, properties: Mapping[str, Any]) -> pa.Table:
    """Read one split of an Examples artifact; NotFoundError names the splits it has."""
    splits = properties.get("splits") or sorted(p.stem for p in examples_dir.glob("*.parquet"))
    path = split_path(examples_dir, split)
    if split not in splits or not path.is_file():
        raise NotFoundError(f"The examples have no split {split!r}; they have {list(splits)}.")
    return pq.read_table(path)


def splits_of(
    properties: Mapping[str, Any], directory: Path, *, suffix: str = ".parquet"
) -> list[str]:
    """The split names of an Examples (or statistics) artifact, in the producer's order."""
    splits = properties.get("splits")
    if isinstance(splits, list) and all(isinstance(s, str) for s in splits):
        return [str(s) for s in splits]
    return sorted(p.stem for p in directory.glob(f"*{suffix}"))
