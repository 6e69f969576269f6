"""SchemaGen: infer a schema from the training statistics (TFDV's rules), optionally
overridden by a curated YAML schema, and write it as ``schema.yaml`` (human-editable).

A curated schema wins: ``load_schema(curated, base=inferred)`` keeps every key the curated
file states and fills the rest from the inferred schema. :func:`SchemaGen` reads the curated
file when the pipeline is defined and passes its *text* as a parameter, so editing the file
changes the step's cache key.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from loopline.components.statistics_gen import reference_split
from loopline.components.tables import splits_of
from loopline.data import Schema as DataSchema
from loopline.data import dump_schema, infer_schema, load_profile, load_schema
from loopline.errors import InvalidInputError, NotFoundError
from loopline.pipeline import ExampleStatistics, Input, Output, Schema, Step, component

SCHEMA_FILE = "schema.yaml"


@component(name="SchemaGen")
def schema_gen(
    statistics: Input[ExampleStatistics],
    schema: Output[Schema],
    split: str | None = None,
    max_domain_size: int = 100,
    infer_ranges: bool = False,
    curated_schema: str | None = None,
    curated_source: str | None = None,
) -> None:
    """Infer from split ``split`` (default: the reference split); apply ``curated_schema``
    (YAML text) on top."""
    splits = splits_of(statistics.properties, statistics.path, suffix=".json")
    name = split or reference_split(splits)
    path = statistics.path / f"{name}.json"
    if not path.is_file():
        raise NotFoundError(f"The statistics have no split {name!r}; they have {splits}.")
    inferred = infer_schema(
        load_profile(path), max_domain_size=max_domain_size, infer_ranges=infer_ranges
    )
    result = inferred
    if curated_schema is not None:
        inferred = _without_retyped(inferred, curated_schema)
        with tempfile.TemporaryDirectory() as tmp:
            file = Path(tmp) / "curated.yaml"
            file.write_text(curated_schema, encoding="utf-8")
            try:
                result = load_schema(file, base=inferred)
            except InvalidInputError as exc:
                where = curated_source or "the curated schema"
                raise InvalidInputError(f"{where}: {exc}") from exc
    dump_schema(result, schema.path / SCHEMA_FILE)
    schema.properties.update(
        features=len(result.features),
        source="curated+inferred" if curated_schema is not None else "inferred",
        curated_file=curated_source,
        inferred_from_split=name,
    )


def _without_retyped(inferred: DataSchema, curated_text: str) -> DataSchema:
    """``inferred`` minus the features whose type the curated schema changes: what was
    inferred for another type (a string domain, a numeric range) must not carry over."""
    try:
        data = yaml.safe_load(curated_text)
    except yaml.YAMLError:
        return inferred  # load_schema reports the YAML error with the file name
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, dict):
        return inferred
    retyped = {
        str(name)
        for name, body in features.items()
        if isinstance(body, dict)
        and "type" in body
        and (f := inferred.get(str(name))) is not None
        and str(body["type"]) != f.dtype.value
    }
    return DataSchema(tuple(f for f in inferred.features if f.name not in retyped))


def SchemaGen(
    *,
    statistics: Any,
    curated_schema_file: str | os.PathLike[str] | None = None,
    split: str | None = None,
    max_domain_size: int = 100,
    infer_ranges: bool = False,
    id: str = "SchemaGen",
) -> Step:
    """A SchemaGen step; ``curated_schema_file`` is read now and travels as a parameter.

    Raises:
        NotFoundError: the curated schema file does not exist.
    """
    text = source = None
    if curated_schema_file is not None:
        p = Path(curated_schema_file)
        if not p.is_file():
            raise NotFoundError(f"Curated schema file {str(p)!r} does not exist.")
        text, source = p.read_text(encoding="utf-8"), str(p)
    return schema_gen(
        statistics=statistics,
        split=split,
        max_domain_size=max_domain_size,
        infer_ranges=infer_ranges,
        curated_schema=text,
        curated_source=source,
    ).with_id(id)
