"""Fuzzing bundle manifests (``loopline-model.yaml``): whatever a manifest says, loading the
bundle never runs code the operator did not trust, and fails only with a loopline error.

Each example copies one of four bundles — a scikit-learn model, a scikit-learn pipeline
whose ``FunctionTransformer`` calls a hostile function, a ``python``-flavor bundle whose
``model`` file is a hostile pickle, a self-saving model whose loader the operator may trust —
then rewrites its manifest (structured mutations, hostile loaders and flavors, files listed
with their true digests, YAML tags that would construct Python objects), loads it with
``load_model`` and, when it loads, runs its methods on its example as a server's warm-up
would. The hostile pieces (``tests/fuzz/hostile.py``) write a marker file when called; it
must never appear.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from tests.bundle.selfsaving import Centroids
from tests.fuzz import hostile
from tests.fuzz.mutations import FUZZ, mutated, weird_values

from loopline.bundle import MANIFEST_NAME, Trust, infer_signature, load_model, save_model
from loopline.errors import InvalidInputError, NotFoundError

CENTROIDS = "tests.bundle.selfsaving:Centroids"
LOADERS = (
    "joblib:numpy_pickle",
    "tests.fuzz.hostile:SelfLoading",
    "tests.fuzz.hostile:touch_marker",
    "pickle:Unpickler",
    "builtins:eval",
    "os:system",
    "numpy:load",
    "subprocess:Popen",
    CENTROIDS,
    "",
    ":",
    "a:b:c",
    "tests.fuzz.hostile",
    "tests/fuzz/hostile.py:SelfLoading",
)
BASES = ("sklearn", "hostile-skops", "python-pickle", "centroids")
SWAPPABLE = {
    "sklearn": "model.skops",
    "hostile-skops": "model.skops",
    "centroids": "model/centroids.npy",
}
TRUSTS = (Trust(), Trust(loaders=frozenset({CENTROIDS})))
YAML_TAGS = (
    "!!python/object/apply:os.system ['true']",
    "!!python/object/apply:tests.fuzz.hostile.touch_marker []",
    "!!python/name:tests.fuzz.hostile.touch_marker",
    "!!python/object:tests.fuzz.hostile.SelfLoading {}",
    "&a [*a]",
    "!!binary aGVsbG8=",
    "!!set {a, b}",
)


@dataclass
class Bundles:
    bases: dict[str, Path]
    pickle_payload: bytes
    marker: Path


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bundles]:
    root = tmp_path_factory.mktemp("fuzz-manifests")
    marker = root / "code-ran"
    saved = os.environ.get(hostile.MARKER_VARIABLE)
    os.environ[hostile.MARKER_VARIABLE] = str(marker)
    x, y = load_iris(return_X_y=True)
    sig = infer_signature(x, y)
    fitted = LogisticRegression(max_iter=300).fit(x, y)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(x, y)
    hostile_pipeline = make_pipeline(FunctionTransformer(func=hostile.touch_marker), fitted)
    payload = pickle.dumps(hostile.Touches())
    python = root / "python-pickle"
    python.mkdir()
    (python / "model").write_bytes(payload)
    manifest = yaml.safe_load(
        (save_model(Centroids.fit(x, y), root / "centroids", signature=sig, flavor="python",
                    input_example=x[:2]) / MANIFEST_NAME).read_text()
    )  # fmt: skip
    manifest.update(
        loader="joblib:numpy_pickle", files={"model": hashlib.sha256(payload).hexdigest()}
    )
    (python / MANIFEST_NAME).write_text(yaml.safe_dump(manifest))
    bases = {
        "sklearn": save_model(pipeline, root / "sklearn", signature=sig, input_example=x[:2]),
        "hostile-skops": save_model(
            hostile_pipeline, root / "hostile-skops", signature=sig, input_example=x[:2]
        ),
        "python-pickle": python,
        "centroids": root / "centroids",
    }
    assert not marker.exists(), "building the hostile bundles ran their code"
    try:
        yield Bundles(bases, payload, marker)
    finally:
        if saved is None:
            del os.environ[hostile.MARKER_VARIABLE]
        else:
            os.environ[hostile.MARKER_VARIABLE] = saved


@st.composite
def manifest_edits(draw: st.DrawFn, manifest: dict[str, Any], payload_digest: str) -> Any:
    """A manifest with hostile targeted edits, then generic structured mutations."""
    doc = dict(manifest)
    if draw(st.booleans()):
        doc["flavor"] = draw(st.sampled_from(["python", "sklearn", "pickle", "", None]))
    if draw(st.booleans()):
        doc["loader"] = draw(st.sampled_from(LOADERS) | weird_values)
    if draw(st.booleans()):
        doc["has_transform"] = draw(st.sampled_from([True, False, "yes", 1, None]))
    if draw(st.booleans()):
        files = dict(doc.get("files") or {})
        name = draw(
            st.sampled_from(
                ["model", "model.skops", "transform.skops", "evil.pkl", "../evil.pkl", "/etc/x"]
            )
        )
        files[name] = payload_digest  # the true digest of the hostile pickle, if placed there
        doc["files"] = files
    if draw(st.booleans()):
        doc = draw(mutated(doc))
    return doc


def manifest_text(draw: st.DrawFn, doc: Any) -> str:
    text = yaml.safe_dump(doc, allow_unicode=True)
    if draw(st.integers(0, 4)) == 0:  # a YAML tag that would construct a Python object
        key = draw(st.sampled_from(["loader", "flavor", "files", "metadata", "example"]))
        text += f"\n{key}: {draw(st.sampled_from(YAML_TAGS))}\n"
    return text


def place_payload(directory: Path, files: Any, payload: bytes) -> None:
    """Write the hostile pickle under every listed name that is missing and safe to write."""
    if not isinstance(files, dict):
        return
    for name in files:
        if not isinstance(name, str) or not name or name.startswith(("/", "..")):
            continue
        target = directory / name
        if not target.exists() and target.resolve().is_relative_to(directory.resolve()):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(payload)


def load_like_a_server(directory: Path, trust: Trust) -> None:
    """Load the bundle and, when it loads, run its methods on its example (the warm-up)."""
    try:
        model = load_model(directory, trust=trust)
    except (InvalidInputError, NotFoundError) as exc:
        assert str(exc).strip()
        return
    try:
        model.predict(model.example_batch())
    except Exception:  # a bad example is the warm-up's to report; code must not have run
        pass


@settings(FUZZ, max_examples=250)
@given(data=st.data(), base=st.sampled_from(BASES), trust=st.sampled_from(TRUSTS))
def test_a_mutated_manifest_never_runs_code_and_fails_with_a_loopline_error(
    bundles: Bundles, data: st.DataObject, base: str, trust: Trust
) -> None:
    digest = hashlib.sha256(bundles.pickle_payload).hexdigest()
    manifest = yaml.safe_load((bundles.bases[base] / MANIFEST_NAME).read_text())
    swapped = SWAPPABLE.get(base)
    swap = swapped is not None and data.draw(st.booleans())
    if swap:  # a model file becomes the hostile pickle, listed with its true digest
        manifest["files"][swapped] = digest
    doc = data.draw(manifest_edits(manifest, digest))
    text = manifest_text(data.draw, doc)
    with tempfile.TemporaryDirectory(prefix="fuzz-bundle-") as tmp:
        directory = Path(tmp) / "bundle"
        shutil.copytree(bundles.bases[base], directory)
        (directory / MANIFEST_NAME).write_text(text, encoding="utf-8")
        if swap:
            (directory / str(swapped)).write_bytes(bundles.pickle_payload)
        try:
            edited = yaml.safe_load(text)
        except yaml.YAMLError:
            edited = None
        place_payload(directory, edited.get("files") if isinstance(edited, dict) else None,
                      bundles.pickle_payload)  # fmt: skip
        load_like_a_server(directory, trust)
    assert not bundles.marker.exists(), f"code from the bundle ran: {text}"


def test_the_untouched_bundles_load_only_when_trusted(bundles: Bundles) -> None:
    load_model(bundles.bases["sklearn"])
    load_model(bundles.bases["centroids"], trust=TRUSTS[1])
    for base, match in (
        ("hostile-skops", "contains type 'tests.fuzz.hostile.touch_marker', which is not a "
                          "trusted type"),
        ("python-pickle", "names loader 'joblib:numpy_pickle', which is not a trusted loader"),
        ("centroids", f"names loader '{CENTROIDS}', which is not a trusted loader"),
    ):  # fmt: skip
        with pytest.raises(InvalidInputError, match=match):
            load_model(bundles.bases[base])
    assert not bundles.marker.exists()


# ---- what the fuzzer found (each raised a non-loopline error before issue #11's fixes) ---------


@pytest.mark.parametrize("methods", [[["predict"]], [None], [1]])
def test_a_method_that_is_not_a_string_is_refused_naming_the_field(
    bundles: Bundles, tmp_path: Path, methods: list[Any]
) -> None:
    directory = tmp_path / "bundle"
    shutil.copytree(bundles.bases["sklearn"], directory)
    manifest = yaml.safe_load((directory / MANIFEST_NAME).read_text())
    manifest["methods"] = methods
    (directory / MANIFEST_NAME).write_text(yaml.safe_dump(manifest))
    with pytest.raises(InvalidInputError, match="methods"):
        load_model(directory)


@pytest.mark.parametrize("model_file", ["model", "model/centroids.npy"])
def test_a_trusted_loader_failing_on_the_bundles_bytes_is_an_invalid_input_error(
    bundles: Bundles, tmp_path: Path, model_file: str
) -> None:
    directory = tmp_path / "bundle"
    shutil.copytree(bundles.bases["centroids"], directory)
    shutil.rmtree(directory / "model")
    (directory / model_file).parent.mkdir(parents=True, exist_ok=True)
    (directory / model_file).write_bytes(bundles.pickle_payload)
    manifest = yaml.safe_load((directory / MANIFEST_NAME).read_text())
    manifest["files"] = {model_file: hashlib.sha256(bundles.pickle_payload).hexdigest()}
    (directory / MANIFEST_NAME).write_text(yaml.safe_dump(manifest))
    with pytest.raises(InvalidInputError, match="bundle"):
        load_model(directory, trust=TRUSTS[1])
    assert not bundles.marker.exists()


def test_the_marker_does_appear_when_an_operator_trusts_the_hostile_function(
    bundles: Bundles,
) -> None:
    """The detector works: trusted, the hostile pipeline's function runs at the warm-up."""
    trust = Trust(types=frozenset({"tests.fuzz.hostile.touch_marker"}))
    try:
        load_like_a_server(bundles.bases["hostile-skops"], trust)
        assert bundles.marker.exists()
    finally:
        bundles.marker.unlink(missing_ok=True)


@pytest.mark.parametrize("text", ["[" * 100_000, "a: " + "[" * 5_000, "- " * 3_000 + "x"])
def test_a_deeply_nested_manifest_is_an_invalid_input_error(
    bundles: Bundles, tmp_path: Path, text: str
) -> None:
    directory = tmp_path / "bundle"
    shutil.copytree(bundles.bases["sklearn"], directory)
    (directory / MANIFEST_NAME).write_text(text)
    with pytest.raises(InvalidInputError, match="loopline-model.yaml"):
        load_model(directory)
