"""``loopline gc``: a store with several runs, an aliased old model and a deployed revision
keeps exactly what they need; ``--dry-run`` deletes nothing; deleting asks for ``--yes``."""

from __future__ import annotations

from pathlib import Path

from loopline.artifacts.fs import FsspecArtifactStore
from loopline.cli.gc import deployed_model_refs, protected_roots
from loopline.deploy.revision import Revision
from loopline.deploy.spec import Template, template_hash
from loopline.deploy.sql_state import SqlDeploymentStateStore
from loopline.deploy.writes import PutRevision
from loopline.metadata import open_store
from loopline.registry import ModelRegistry
from loopline.testing.deploy import make_spec
from tests.cli.conftest import REPO, as_json

QUICKSTART = str(REPO / "examples" / "quickstart" / "pipeline.py")
POLICY = ("--keep-last", "1", "--older-than", "0")


def _outputs(result: object) -> dict[str, dict[str, int]]:
    assert isinstance(result, dict)
    return {s["name"]: s["outputs"] for s in result["steps"]}


def test_gc_keeps_the_protected_closure_and_deletes_the_rest(loopline, tmp_path: Path) -> None:
    first = _outputs(as_json(loopline("run", QUICKSTART, "--json")))
    second = _outputs(as_json(loopline("run", QUICKSTART, "--no-cache", "--json")))
    as_json(loopline("run", QUICKSTART, "--no-cache", "--json"))  # the newest run stays
    champion = first["train_tree"]["model"]
    loopline("models", "register", "iris", str(champion), "--why", "first")
    loopline("models", "alias", "set", "iris", "champion", "1", "--why", "baseline")

    # A deployment whose recorded revision serves iris/1.
    store = open_store(f"sqlite:///{tmp_path}/loopline.db")
    try:
        state = SqlDeploymentStateStore.from_metadata(store)
        state.apply_spec(make_spec(model="iris@champion"), 1.0)
        template = Template(model="iris/1")
        revision = Revision("web", template_hash(template), 1, template, 1.0, replicas=1)
        state.commit("web", [PutRevision(revision)])
        assert deployed_model_refs(store) == {"iris@champion", "iris/1"}
        registry = ModelRegistry(store, FsspecArtifactStore(str(tmp_path / "loopline_artifacts")))
        assert champion in protected_roots(store, registry, {"iris/1"})
    finally:
        store.close()

    dry = as_json(loopline("gc", "--dry-run", *POLICY, "--json"))
    assert isinstance(dry, dict) and dry["dry_run"] is True
    assert len(dry["runs"]) == 2
    # The older --no-cache run goes whole; of the first run, what the champion needs stays:
    # its data, split and tree trainer; the logistic regression and the comparison go.
    doomed = {a for outs in second.values() for a in outs.values()}
    doomed |= set(first["train_logreg"].values()) | set(first["compare"].values())
    kept = {a for outs in first.values() for a in outs.values()} - doomed
    assert dry["artifacts"] == len(doomed)
    assert dry["runs_kept_in_part"] == [dry["runs"][0]]
    assert dry["bytes_freed"] > 0

    refused = loopline("gc", *POLICY, check=False)  # stdin is not a terminal here
    assert refused.returncode == 1
    assert "pass --yes to confirm" in refused.stderr
    assert "2 run(s)" in refused.stdout  # it said what would go before refusing

    store = open_store(f"sqlite:///{tmp_path}/loopline.db")
    try:  # neither the dry run nor the refused one deleted anything
        assert {a.id for a in store.get_artifacts(sorted(doomed))} == doomed
        assert len(store.list_contexts(type_name="run")) == 3
    finally:
        store.close()

    done = as_json(loopline("gc", *POLICY, "--yes", "--json"))
    assert isinstance(done, dict) and done["runs_deleted"] == 1
    store = open_store(f"sqlite:///{tmp_path}/loopline.db")
    try:
        assert len(store.list_contexts(type_name="run")) == 2
        assert store.get_artifacts(sorted(doomed)) == []
        survivors = store.get_artifacts(sorted(kept))
        assert {a.id for a in survivors} == kept
        assert all(Path(a.uri.removeprefix("file://")).exists() for a in survivors)
    finally:
        store.close()
    lineage = as_json(loopline("lineage", "iris@champion", "--json"))
    assert isinstance(lineage, dict)
    assert {first["ingest"]["data"], first["split"]["train"]} <= {
        a["id"] for a in lineage["artifacts"]
    }

    again = as_json(loopline("gc", *POLICY, "--yes", "--json"))
    assert isinstance(again, dict) and again["artifacts"] == 0


def test_the_roots_are_registered_models_their_blessings_and_the_latest_blessed(
    tmp_path: Path,
) -> None:
    from loopline.metadata import ArtifactState, InMemoryMetadataStore

    store = InMemoryMetadataStore()
    artifacts = FsspecArtifactStore(str(tmp_path / "artifacts"))
    registry = ModelRegistry(store, artifacts)

    def model() -> int:
        uri = artifacts.allocate("Model", "m")
        with artifacts.staging() as staged:
            (staged / "m.bin").write_bytes(uri.encode())
            digest = artifacts.publish(staged, uri)
        return store.put_artifact("Model", uri, digest=digest, state=ArtifactState.LIVE).id

    def bless(model_id: int, blessed: int) -> int:
        props = {"blessed": blessed, "current_model_id": model_id}
        live = ArtifactState.LIVE
        return store.put_artifact("ModelBlessing", "mem://b", state=live, properties=props).id

    registered, unregistered, newest_blessed = model(), model(), model()
    registry.register("iris", registered, who="ci", why="test")
    kept = {registered, newest_blessed, bless(registered, 1), bless(newest_blessed, 1)}
    gone = {unregistered, bless(unregistered, 0), bless(registered, 0)}
    roots = protected_roots(store, registry, {"iris/1", "iris@missing", "not-a-model/7"})
    assert kept <= roots and not gone & roots
