from __future__ import annotations

from tests.cli.conftest import REPO, as_json

QUICKSTART = str(REPO / "examples" / "quickstart" / "pipeline.py")


def test_register_alias_history_undo_and_lineage_of_a_promotion(loopline) -> None:
    result = as_json(loopline("run", QUICKSTART, "--json"))
    outputs = {s["name"]: s["outputs"] for s in result["steps"]}
    logreg, tree = outputs["train_logreg"]["model"], outputs["train_tree"]["model"]
    report = outputs["compare"]["report"]
    v1 = as_json(loopline("models", "register", "iris", str(logreg), "--why", "first", "--json"))
    v2 = as_json(loopline("models", "register", "iris", str(tree), "--why", "tree", "--json"))
    assert (v1["version"], v2["version"]) == (1, 2)

    loopline("models", "alias", "set", "iris", "champion", "1", "--why", "baseline",
             "--who", "ada")
    move = as_json(loopline("models", "alias", "set", "iris", "champion", "2", "--why",
                            "tree wins", "--who", "ada", "--evidence", str(report), "--json"))
    assert (move["from_version"], move["to_version"], move["evidence"]) == (1, 2, [report])

    listed = as_json(loopline("models", "list", "--json"))
    assert listed == [{"name": "iris", "latest_version": 2, "versions": 2,
                       "aliases": {"champion": 2}}]

    undo = as_json(loopline("models", "alias", "undo", "iris", "champion", "--why",
                            "tree is flaky", "--json"))
    assert (undo["from_version"], undo["to_version"], undo["action"]) == (2, 1, "undo")
    history = as_json(loopline("models", "alias", "history", "iris", "champion", "--json"))
    assert [(h["action"], h["to_version"], h["who"]) for h in history][:2] == [
        ("undo", 1, history[0]["who"]),
        ("set", 2, "ada"),
    ]
    # The promotion is an execution whose inputs are the model and its evidence.
    graph = as_json(loopline("lineage", f"execution:{move['execution_id']}", "--hops", "1",
                             "--json"))
    assert {a["id"] for a in graph["artifacts"]} == {tree, report}

    shown = as_json(loopline("models", "show", "iris", "--json"))
    assert shown["aliases"] == {"champion": 1}
    assert [v["aliases"] for v in shown["versions"]] == [["champion"], []]


def test_resolving_a_missing_alias_names_the_known_ones(loopline) -> None:
    result = as_json(loopline("run", QUICKSTART, "--json"))
    model = next(s for s in result["steps"] if s["name"] == "train_tree")["outputs"]["model"]
    loopline("models", "register", "iris", str(model), "--why", "first")
    loopline("models", "alias", "set", "iris", "challenger", "1", "--why", "try it")
    proc = loopline("lineage", "iris@champion", check=False)
    assert proc.returncode == 4
    assert "has no alias 'champion'" in proc.stderr and "challenger" in proc.stderr


def test_alias_set_with_expect_moves_only_from_the_expected_version(loopline) -> None:
    result = as_json(loopline("run", QUICKSTART, "--json"))
    outputs = {s["name"]: s["outputs"] for s in result["steps"]}
    for step in ("train_logreg", "train_tree"):
        loopline("models", "register", "iris", str(outputs[step]["model"]), "--why", step)
    loopline("models", "alias", "set", "iris", "champion", "1", "--why", "first", "--expect", "0")
    stale = loopline("models", "alias", "set", "iris", "champion", "2", "--why", "retrained",
                     "--expect", "2", check=False)
    assert stale.returncode == 1
    assert "Alias iris@champion is at version 1, not 2 as expected; re-read and retry." in (
        stale.stderr
    )
    move = as_json(loopline("models", "alias", "set", "iris", "champion", "2", "--why",
                            "retrained", "--expect", "1", "--json"))
    assert (move["from_version"], move["to_version"]) == (1, 2)
