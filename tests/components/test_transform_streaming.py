"""Transform's passes in bounded memory: the streamed output is the whole-split transform."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from loopline.components import Transform
from loopline.components.transform_batches import (
    dense,
    fit_transformer,
    frame,
    output_names,
    write_transformed,
)
from loopline.errors import ComponentError, InvalidInputError
from tests.components.conftest import Harness
from tests.components.test_training import data_steps, preprocess

NUMERIC = ["distance", "hour"]
CATEGORICAL = ["company", "local", "dow", "month"]
COLUMNS = NUMERIC + CATEGORICAL


def preprocessing() -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
        ]
    )


@pytest.fixture
def taxi_split(tmp_path: Path, taxi_csv: Path) -> tuple[pa.Table, Path]:
    table = pacsv.read_csv(taxi_csv)
    path = tmp_path / "train.parquet"
    pq.write_table(table, path, row_group_size=2_000)
    return table, path


def test_the_streamed_transform_equals_transforming_the_whole_split(
    taxi_split: tuple[pa.Table, Path], tmp_path: Path
) -> None:
    table, path = taxi_split
    streamed, whole = preprocessing(), preprocessing()
    assert fit_transformer(streamed, path, COLUMNS, batch_rows=500) == table.num_rows
    whole.fit(frame(table, COLUMNS))
    names = output_names(streamed, path, COLUMNS)
    out = tmp_path / "out.parquet"
    rows, groups = write_transformed(streamed, path, out, COLUMNS, names, "tip", batch_rows=500)
    assert rows == table.num_rows and groups == -(-table.num_rows // 500)  # batch by batch
    values = dense(whole.transform(frame(table, COLUMNS)))
    expected = {n: values[:, i] for i, n in enumerate(names)}
    expected["tip"] = table.column("tip").to_numpy(zero_copy_only=False)
    assert pq.read_table(out).equals(pa.table(expected))
    assert pq.ParquetFile(out).metadata.num_row_groups == groups


def test_an_integer_label_with_a_late_null_is_float_in_every_batch(tmp_path: Path) -> None:
    label = pa.array([1, 0] * 500 + [None], type=pa.int64())
    table = pa.table({"x": np.arange(1001, dtype=np.float64), "y": label})
    path = tmp_path / "train.parquet"
    pq.write_table(table, path)
    scaler = StandardScaler()
    fit_transformer(scaler, path, ["x"])
    out = tmp_path / "out.parquet"
    write_transformed(scaler, path, out, ["x"], ["x"], "y", batch_rows=100)
    got = pq.read_table(out).column("y")
    assert got.type == pa.float64()  # as NumPy made it for the whole split: NaN for the null
    assert np.isnan(got.to_numpy()[-1]) and got.to_numpy()[:4].tolist() == [1.0, 0.0, 1.0, 0.0]


def test_partial_fit_streams_the_fit_batch_by_batch(taxi_split: tuple[pa.Table, Path]) -> None:
    table, path = taxi_split
    streamed = StandardScaler()
    fit_transformer(streamed, path, NUMERIC, mode="partial_fit", batch_rows=700)
    whole = StandardScaler().fit(frame(table, NUMERIC))
    assert streamed.n_samples_seen_ == table.num_rows
    np.testing.assert_allclose(streamed.mean_, whole.mean_, rtol=1e-12)
    np.testing.assert_allclose(streamed.var_, whole.var_, rtol=1e-9)


def test_a_sample_fit_sees_fit_rows_rows_and_all_of_a_smaller_split(
    taxi_split: tuple[pa.Table, Path],
) -> None:
    table, path = taxi_split
    sampled = preprocessing()
    assert fit_transformer(sampled, path, COLUMNS, mode="sample", fit_rows=1_000) == 1_000
    assert sampled.named_transformers_["num"].n_samples_seen_ == 1_000
    everything = preprocessing()
    big = table.num_rows + 1
    assert fit_transformer(everything, path, COLUMNS, mode="sample", fit_rows=big) == 6822
    whole = preprocessing().fit(frame(table, COLUMNS))
    np.testing.assert_array_equal(
        everything.named_transformers_["num"].mean_, whole.named_transformers_["num"].mean_
    )


def test_fit_modes_that_cannot_work_are_refused(taxi_split: tuple[pa.Table, Path]) -> None:
    _, path = taxi_split
    with pytest.raises(ComponentError, match="ColumnTransformer has none; use fit_mode='sample'"):
        fit_transformer(preprocessing(), path, COLUMNS, mode="partial_fit")
    with pytest.raises(InvalidInputError, match="fit_mode='sample' needs fit_rows >= 1"):
        fit_transformer(preprocessing(), path, COLUMNS, mode="sample")
    with pytest.raises(InvalidInputError, match=r"fit_mode='online' is not one of"):
        fit_transformer(preprocessing(), path, COLUMNS, mode="online")


def test_the_transform_step_fits_on_a_sample_and_streams_every_split(
    harness: Harness, cancer_dir: Path
) -> None:
    steps = data_steps(cancer_dir)
    gen, _, schema, check = steps
    transform = Transform(
        examples=gen.outputs.examples,
        schema=schema.outputs.schema,
        preprocessing_fn=preprocess,
        label="label",
        anomalies=check.outputs.anomalies,
        fit_mode="sample",
        fit_rows=100,
        batch_rows=64,
    )
    result = harness.run("cancer", [*steps, transform])
    assert result.ok, result.steps
    graph = harness.artifact(result, "Transform", "transform_graph")
    info = json.loads(harness.read(graph, "transform.json"))
    assert (info["fit_mode"], info["fitted_rows"]) == ("sample", 100)
    examples = harness.artifact(result, "Transform", "transformed_examples")
    for split in ("train", "eval"):
        source = harness.read_table(result, "ExampleGen", "examples", split)
        assert examples.properties["rows"][split] == source.num_rows  # type: ignore[index]
        with harness.artifacts.open_local(examples.uri) as local:
            groups = pq.ParquetFile(Path(local) / f"{split}.parquet").metadata.num_row_groups
        assert groups == -(-source.num_rows // 64)  # written batch by batch
