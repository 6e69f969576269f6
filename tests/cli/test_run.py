from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import REPO, as_json

QUICKSTART = str(REPO / "examples" / "quickstart" / "pipeline.py")


def test_quickstart_runs_then_reruns_from_cache_and_lists_runs_as_json(loopline) -> None:
    first = as_json(loopline("run", QUICKSTART, "--json"))
    assert first["status"] == "succeeded"
    assert {s["name"] for s in first["steps"]} == {
        "ingest", "split", "train_logreg", "train_tree", "compare"
    }
    second = as_json(loopline("run", QUICKSTART, "--json"))
    assert all(s["cached"] for s in second["steps"])
    runs = as_json(loopline("runs", "list", "--json"))
    assert [r["id"] for r in runs] == [second["id"], first["id"]]
    newest = runs[0]
    assert newest["pipeline"] == "quickstart" and newest["status"] == "succeeded"
    assert {(s["name"], s["status"], s["cached"]) for s in newest["steps"]} == {
        (name, "cached", True)
        for name in ("ingest", "split", "train_logreg", "train_tree", "compare")
    }


def test_param_change_reruns_one_branch_and_why_rerun_explains_it(loopline) -> None:
    loopline("run", QUICKSTART)
    result = as_json(loopline("run", QUICKSTART, "--param", "c=0.5", "--json"))
    cached = {s["name"]: s["cached"] for s in result["steps"]}
    assert cached == {"ingest": True, "split": True, "train_tree": True,
                      "train_logreg": False, "compare": False}
    why = as_json(loopline("why-rerun", "train_logreg", "--json"))
    assert why["reasons"] == ["parameter 'c' changed: 1.0 → 0.5"]
    diff = as_json(loopline("runs", "diff", str(result["id"] - 1), str(result["id"]), "--json"))
    assert diff["parameters"] == {"c": [1.0, 0.5]}


def test_lineage_of_the_compare_output_reaches_the_raw_data(loopline) -> None:
    result = as_json(loopline("run", QUICKSTART, "--json"))
    metrics_id = next(s for s in result["steps"] if s["name"] == "compare")["outputs"]["report"]
    graph = as_json(loopline("lineage", str(metrics_id), "--json"))
    names = {a["name"] for a in graph["artifacts"]}
    assert {"ingest.data", "split.train", "split.test", "train_logreg.model",
            "train_tree.model", "compare.report"} <= names
    tree = loopline("lineage", str(metrics_id)).stdout
    assert "ingest.data" in tree and "train_tree" in tree


def test_a_missing_pipeline_file_is_a_clear_error(loopline, tmp_path: Path) -> None:
    proc = loopline("run", "nope.py", check=False)
    assert proc.returncode != 0
    assert "Pipeline file 'nope.py' does not exist" in proc.stderr


def test_a_bad_param_is_a_clear_error(loopline) -> None:
    proc = loopline("run", QUICKSTART, "--param", "cc=1", check=False)
    assert proc.returncode == 1
    assert "has no parameter 'cc'" in proc.stderr


def test_artifacts_list_and_show(loopline) -> None:
    loopline("run", QUICKSTART)
    arts = as_json(loopline("artifacts", "list", "--type", "Model", "--json"))
    assert {a["name"] for a in arts} == {"train_logreg.model", "train_tree.model"}
    shown = as_json(loopline("artifacts", "show", str(arts[0]["id"]), "--json"))
    assert shown["state"] == "live" and shown["digest"].startswith("sha256:")
    assert any(c.startswith("run:quickstart-") for c in shown["contexts"])
