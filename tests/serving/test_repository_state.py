"""The pieces of the model repository extension alone: the table swap, the shared state the
workers converge on, the digests file and the token file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.serving.conftest import Models

from loopline.errors import BackendError, InvalidInputError
from loopline.serving import LoadSpec, ServedModel, read_token
from loopline.serving.model_table import ModelTable
from loopline.serving.repository import read_digests
from loopline.serving.repository_state import SharedState

# ------------------------------------------------------------------------------ the table


def test_a_swap_replaces_every_version_of_a_name_in_one_step(models: Models) -> None:
    table = ModelTable([
        ServedModel("lr", "1", models.lr, aliases=("champion",)),
        ServedModel("lr", "2", models.lr_v2),
        ServedModel("rf", "1", models.rf),
    ])  # fmt: skip
    old = table.entries_of("lr")
    new = ModelTable([ServedModel("lr", "3", models.lr_v2)]).entries
    assert table.swap("lr", new) == old
    assert table.versions("lr", with_aliases=True) == ["3"]
    assert table.get("lr", None) is new[0]
    assert table.names() == ["rf", "lr"]
    assert table.swap("lr", []) == new
    with pytest.raises(LookupError, match=r"Model 'lr' is not loaded \(unloaded\); load it with"):
        table.get("lr", None)
    with pytest.raises(LookupError, match="Unknown model 'nope'; this server serves \\['rf'\\]"):
        table.get("nope", None)


def test_a_swap_that_would_serve_a_version_twice_changes_nothing(models: Models) -> None:
    table = ModelTable([ServedModel("lr", "1", models.lr)])
    twice = ModelTable([ServedModel("lr", "2", models.lr)]).entries * 2
    with pytest.raises(InvalidInputError, match="version or alias '2' is served twice"):
        table.swap("lr", twice)
    with pytest.raises(InvalidInputError, match="'rf' cannot be swapped in as 'lr'"):
        table.swap("lr", ModelTable([ServedModel("rf", "1", models.rf)]).entries)
    assert table.versions("lr") == ["1"]


def test_an_entry_counts_the_requests_that_hold_it(models: Models) -> None:
    (entry,) = ModelTable([ServedModel("lr", "1", models.lr)]).entries
    with entry, entry:
        assert entry.in_flight == 2
    with pytest.raises(RuntimeError), entry:
        raise RuntimeError("a request that failed")
    assert entry.in_flight == 0


# ------------------------------------------------------------------------ the shared state


def test_each_change_is_a_new_generation_read_back_by_every_worker(tmp_path: Path) -> None:
    zero, one = SharedState(tmp_path, "0"), SharedState(tmp_path, "1")
    assert one.read().generation == 0 and one.read().models == {}
    assert zero.desire("lr", LoadSpec("lr", "2", ("champion",))) == 1
    assert one.desire("rf", None) == 2
    desired = zero.read()
    assert desired.generation == 2
    assert desired.models == {"lr": LoadSpec("lr", "2", ("champion",)), "rf": None}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["desired.json", "desired.lock"]


def test_only_live_workers_are_waited_for(tmp_path: Path) -> None:
    SharedState(tmp_path, "0").report(3, {"lr": {"version": "2", "state": "READY", "reason": ""}})
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    (tmp_path / "worker-1.json").write_text(
        f'{{"pid": {int(dead.stdout)}, "generation": 1, "models": {{}}}}'
    )
    (tmp_path / "worker-2.json").write_text("{half a wri")
    (status,) = SharedState(tmp_path, "2").statuses()
    assert (status.worker, status.pid, status.generation) == ("0", os.getpid(), 3)
    assert status.models["lr"]["state"] == "READY"


def test_a_damaged_state_file_is_a_backend_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "desired.json").write_text('{"generation": 1, "models": {"lr": {"name": 1}}}')
    with pytest.raises(BackendError, match="desired.json' is damaged.*restart the server"):
        SharedState(tmp_path, "0").read()


def test_a_load_spec_document_is_checked() -> None:
    spec = LoadSpec("lr", "3", ("champion",))
    assert LoadSpec.from_json(spec.to_json()) == spec
    for bad in ({"name": "lr"}, {"name": "lr", "version": "3", "aliases": "x"}, [1]):
        with pytest.raises(InvalidInputError):
            LoadSpec.from_json(bad)
    with pytest.raises(InvalidInputError, match="Version name '../3' is not valid"):
        LoadSpec("lr", "../3")


# ------------------------------------------------------------------ digests and the token


def test_the_digests_file_maps_each_version_to_its_digest(tmp_path: Path) -> None:
    digest = "sha256:" + "a" * 64
    path = tmp_path / "digests.txt"
    path.write_text(f"# repository digests\n\nlr/1 {digest}\nlr/02 {digest}  # re-saved\n")
    assert read_digests(path) == {("lr", "1"): digest, ("lr", "2"): digest}
    for line in ("lr/1", "lr/x " + digest, "lr " + digest, "lr/1 sha256:abc", "a b c"):
        path.write_text(f"lr/1 {digest}\n{line}\n")
        with pytest.raises(InvalidInputError, match=f"line 2 \\({line!r}\\) is not 'NAME/VERSION"):
            read_digests(path)
    with pytest.raises(InvalidInputError, match="--repository-digests: cannot read"):
        read_digests(tmp_path / "missing.txt")


def test_the_token_file_must_be_private_and_long_enough(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("  tok-0123456789abcdef-0123456789\n")
    path.chmod(0o600)
    assert read_token(path) == "tok-0123456789abcdef-0123456789"
    path.chmod(0o640)
    with pytest.raises(InvalidInputError, match=r"has mode 640; it must be readable by its owner"):
        read_token(path)
    path.write_text("short")
    path.chmod(0o600)
    with pytest.raises(InvalidInputError, match="has 5 characters; it needs at least 16"):
        read_token(path)
    with pytest.raises(InvalidInputError, match="--repository-token-file: cannot read"):
        read_token(tmp_path / "none")
