"""Orphaned artifact folders: published bytes whose row a power loss undid are swept, and
nothing a live or pending row references is ever touched."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from loopline.artifacts.fs import FsspecArtifactStore
from loopline.artifacts.orphans import (
    ArtifactFolder,
    References,
    is_artifact_path,
    is_orphan,
)
from loopline.errors import InvalidInputError

HOUR = 3600.0
TOKEN = f"{int(1_800_000_000 * 1e9):016x}{'ab' * 8}"  # allocated at t = 1.8e9 s


def _publish(store: FsspecArtifactStore, key: str, text: str = "bytes") -> str:
    uri = store.allocate("Model", key)
    with store.staging() as staged:
        (staged / "model.txt").write_text(text)
        store.publish(staged, uri)
    return uri


def test_only_folders_laid_out_by_allocate_are_artifact_folders() -> None:
    assert is_artifact_path(f"Model/run-1/trainer/{TOKEN}")
    assert is_artifact_path(f"Model/k/{TOKEN}")
    assert not is_artifact_path(f"Model/{TOKEN}")  # no key
    assert not is_artifact_path("Model/run-1/trainer")  # no token
    assert not is_artifact_path(f".staging/x/{TOKEN}")
    assert not is_artifact_path(f"Model/_LOOPLINE_x/{TOKEN}")
    assert not is_artifact_path(f"Model/k/{TOKEN.upper()}")


def test_an_unreferenced_folder_is_an_orphan_only_once_its_change_and_allocation_are_old() -> None:
    folder = ArtifactFolder(f"Model/k/{TOKEN}", changed_at=1_800_000_100.0)
    nothing = References.of([])
    assert not is_orphan(folder, nothing, now=1_800_000_100.0 + HOUR - 1, grace=HOUR)
    assert is_orphan(folder, nothing, now=1_800_000_100.0 + HOUR, grace=HOUR)
    renamed_late = ArtifactFolder(f"Model/k/{TOKEN}", changed_at=1_800_000_000.0 + 5 * HOUR)
    assert not is_orphan(renamed_late, nothing, now=1_800_000_000.0 + 5.5 * HOUR, grace=HOUR)


def test_a_referenced_folder_and_every_folder_above_one_are_never_orphans() -> None:
    run = "0123456789abcdef0123456789abcdef"  # a key segment that looks like a token
    refs = References.of([f"Model/p/{run}/trainer/{TOKEN}"])
    late = 1e12
    assert not is_orphan(ArtifactFolder(f"Model/p/{run}/trainer/{TOKEN}", 0.0), refs, late, HOUR)
    assert not is_orphan(ArtifactFolder(f"Model/p/{run}", 0.0), refs, late, HOUR)
    assert is_orphan(ArtifactFolder(f"Model/q/{run}", 0.0), refs, late, HOUR)


def test_sweep_removes_unreferenced_published_folders_after_the_grace_only(
    local_store: FsspecArtifactStore,
) -> None:
    kept = _publish(local_store, "run-1/trainer/model")
    pending = _publish(local_store, "run-1/evaluator/blessing")
    orphan = _publish(local_store, "run-2/trainer/model")
    referenced = [kept, pending]
    assert local_store.sweep_orphans(referenced, now=time.time(), grace=HOUR) == []
    assert local_store.exists(orphan)
    assert local_store.sweep_orphans(referenced, now=time.time() + 2 * HOUR, grace=HOUR) == [
        orphan
    ]
    assert not local_store.exists(orphan)
    assert local_store.exists(kept) and local_store.exists(pending)
    assert local_store.digest(kept).startswith("sha256:")


def test_sweep_leaves_foreign_hidden_and_non_layout_folders_alone(
    local_store: FsspecArtifactStore,
) -> None:
    kept = _publish(local_store, "run-1/trainer/model")
    root = Path(local_store.root.removeprefix("file://"))
    mine = [root / "notes" / "a" / "b", root / ".staging" / "x" / "y" / TOKEN,
            root / "Model" / TOKEN, root / "Model" / "k" / "not-a-token"]  # fmt: skip
    for folder in mine:
        folder.mkdir(parents=True)
        (folder / "keep.txt").write_text("mine")
    (root / "Model" / "k" / "file-named-like-a-token").write_text("x")
    assert local_store.sweep_orphans([kept], now=time.time() + 2 * HOUR, grace=HOUR) == []
    assert all((folder / "keep.txt").exists() for folder in mine)


def test_a_token_like_key_segment_above_a_live_artifact_is_walked_through_not_removed(
    local_store: FsspecArtifactStore,
) -> None:
    run = "0123456789abcdef0123456789abcdef"
    live = _publish(local_store, f"pipe/{run}/trainer/model")
    orphan = _publish(local_store, f"pipe/{run}/evaluator/model")
    removed = local_store.sweep_orphans([live], now=time.time() + 2 * HOUR, grace=HOUR)
    assert removed == [orphan] and local_store.exists(live)


def test_a_remote_store_sweeps_completed_uploads_no_row_references(
    objdir_store: FsspecArtifactStore,
) -> None:
    kept = _publish(objdir_store, "run-1/trainer/model")
    orphan = _publish(objdir_store, "run-2/trainer/model")
    assert objdir_store.sweep_orphans([kept], now=time.time(), grace=HOUR) == []
    assert objdir_store.sweep_orphans([kept], now=time.time() + 2 * HOUR, grace=HOUR) == [orphan]
    assert objdir_store.exists(kept) and not objdir_store.exists(orphan)


def test_a_bad_grace_is_rejected_naming_it(local_store: FsspecArtifactStore) -> None:
    with pytest.raises(InvalidInputError, match="Orphan grace -1 must be a finite number"):
        local_store.sweep_orphans([], now=time.time(), grace=-1)


def test_a_folder_whose_row_a_power_loss_rolled_back_is_swept_by_the_orphan_sweep(
    tmp_path: Path,
) -> None:
    from loopline.metadata import ArtifactState
    from loopline.metadata.urls import open_store
    from loopline.pipeline.recovery import sweep_orphaned_folders

    db = tmp_path / "loopline.db"
    store = FsspecArtifactStore(str(tmp_path / "artifacts"))
    md = open_store(f"sqlite:///{db}")
    live = _publish(store, "run-1/trainer/model")
    md.put_artifact("Model", live, state=ArtifactState.LIVE)
    md.close()
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    for f in tmp_path.glob("loopline.db*"):  # what reached the disk before the power loss
        shutil.copy2(f, snapshot / f.name)

    md = open_store(f"sqlite:///{db}")
    uri = store.allocate("Model", "run-2/trainer/model")
    row = md.put_artifact("Model", uri, state=ArtifactState.PENDING)  # committed, not synced
    with store.staging() as staged:
        (staged / "model.txt").write_text("renamed into place and fsynced")
        md.update_artifact(row.id, digest=store.publish(staged, uri), state=ArtifactState.LIVE)
    md.close()
    for f in tmp_path.glob("loopline.db*"):  # the power loss: the last transactions are gone
        f.unlink()
    for f in snapshot.iterdir():
        shutil.copy2(f, tmp_path / f.name)

    md = open_store(f"sqlite:///{db}")
    try:
        assert [a.uri for a in md.list_artifacts()] == [live]  # no row names the folder
        assert store.exists(uri)
        assert sweep_orphaned_folders(md, store) == []  # within the grace: a writer may
        assert store.exists(uri)  # be about to commit its row
        assert sweep_orphaned_folders(md, store, grace=0.0) == [uri]
        assert not store.exists(uri) and store.exists(live)
    finally:
        md.close()
