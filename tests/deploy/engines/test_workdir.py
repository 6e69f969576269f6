"""Replica working directories: private (0700, this user's, never through a symlink), reused
by a replica restarted in place, removed once a replica is gone for good — by the engine, and
through the manager when a replica is replaced, scaled away or its deployment deleted."""

from __future__ import annotations

import os
import signal
import stat
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from loopline.deploy.backoff import BackoffPolicy
from loopline.deploy.engines.local import LocalEngine
from loopline.deploy.manager import DeploymentManager
from loopline.deploy.replica import Replica
from loopline.deploy.spec import DeploymentSpec, Template
from loopline.deploy.state import InMemoryDeploymentStateStore
from loopline.deploy.writes import Write
from loopline.errors import BackendError, InvalidInputError
from loopline.serving import ServeCommand
from loopline.testing.artifacts import wait_for

FAKE_SERVER = str(Path(__file__).parents[1] / "fake_server.py")
SLEEP = (sys.executable, "-c", "import time; time.sleep(60)")


def fake_server(replica_id: str, command: ServeCommand) -> list[str]:
    (model,) = command.models
    return [sys.executable, FAKE_SERVER, "--port", str(command.port), "--id", replica_id,
            "--model", model]  # fmt: skip


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _dirs(root: Path) -> set[str]:
    return {p.name for p in root.iterdir()} if root.exists() else set()


def test_a_replica_directory_and_its_root_are_private_and_released_with_everything_inside(
    tmp_path: Path,
) -> None:
    old = os.umask(0o022)
    try:
        engine = LocalEngine(log_dir=tmp_path / "logs", argv=lambda rid, command: SLEEP)
        handle = engine.start_replica("web-abc123", Template(model="iris/1"))
    finally:
        os.umask(old)
    root = tmp_path / "replicas"
    workdir = root / "web-abc123"
    assert (_mode(root), _mode(workdir)) == (0o700, 0o700)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    (workdir / "sub").mkdir()
    (workdir / "sub" / "file").write_text("written by the replica")
    (workdir / "link").symlink_to(outside)  # a replica's symlink out is removed, not followed
    engine.stop(handle, grace=5)
    engine.release_replica("web-abc123")
    assert _dirs(root) == set()
    assert (outside / "keep").read_text() == "x"
    engine.release_replica("web-abc123")  # nothing left: nothing to do


def test_an_existing_directory_is_made_private_and_a_planted_symlink_is_refused(
    tmp_path: Path,
) -> None:
    engine = LocalEngine(log_dir=tmp_path / "logs", argv=lambda rid, command: SLEEP)
    root = tmp_path / "replicas"
    (root / "wide").mkdir(parents=True, mode=0o755)
    (root / "wide").chmod(0o755)
    handle = engine.start_replica("wide", Template(model="iris/1"))
    engine.stop(handle, grace=5)
    assert _mode(root / "wide") == 0o700
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    (root / "planted").symlink_to(elsewhere)
    with pytest.raises(BackendError, match=r"cannot start replica 'planted': no working "
                                           r"directory .* exists and is not a directory"):
        engine.start_replica("planted", Template(model="iris/1"))
    assert _mode(elsewhere) == 0o755  # not chmod-ed through the link
    with pytest.raises(BackendError, match=r"could not remove the working directory .*planted"):
        engine.release_replica("planted")  # rmtree refuses a symlink at the top
    assert elsewhere.is_dir()
    with pytest.raises(InvalidInputError, match=r"Replica id '\.\./x' cannot name a working"):
        engine.release_replica("../x")


def test_a_start_that_fails_leaves_no_directory(tmp_path: Path) -> None:
    engine = LocalEngine(log_dir=tmp_path / "logs", python=str(tmp_path / "no-python"),
                         argv=lambda rid, command: SLEEP)  # fmt: skip
    with pytest.raises(BackendError, match="could not run"):
        engine.start_replica("web-abc123", Template(model="iris/1"))
    assert _dirs(tmp_path / "replicas") == set()


# ---- through the manager --------------------------------------------------------------------


def _replicas(manager: DeploymentManager) -> list[Replica]:
    return manager.store.list_replicas("web")


def _settled(manager: DeploymentManager, n: int, model: str) -> bool:
    """One sync; then: ``n`` replicas, all ready, all of ``model``'s revision."""
    manager.sync("web")
    reps = _replicas(manager)
    revisions = {r.hash: r.template.model for r in manager.store.list_revisions("web")}
    return len(reps) == n and all(r.ready and revisions[r.revision] == model for r in reps)


def test_replaced_scaled_away_and_deleted_replicas_leave_no_directory_behind(
    tmp_path: Path,
) -> None:
    engine = LocalEngine(log_dir=tmp_path / "logs", argv=fake_server)
    root = engine.work_root
    manager = DeploymentManager(store=InMemoryDeploymentStateStore(), engine=engine,
                                backoff=BackoffPolicy(initial=0.1, cap=0.5),
                                background_stops=False, stop_grace=5)  # fmt: skip
    spec = DeploymentSpec(name="web", template=Template(model="iris/1"), replicas=2)
    manager.apply(spec)
    wait_for(lambda: _settled(manager, 2, "iris/1"), timeout=60, what="two ready replicas")
    first, second = _replicas(manager)
    assert _dirs(root) == {first.id, second.id}
    # killed: restarted in place (same id), in the same directory, files and all
    (root / first.id / "state").write_text("kept across a restart")
    assert first.pid is not None
    os.kill(first.pid, signal.SIGKILL)
    wait_for(lambda: _settled(manager, 2, "iris/1") and _replicas(manager)[0].restarts == 1,
             timeout=60, what="the killed replica restarted in place")  # fmt: skip
    assert (root / first.id / "state").read_text() == "kept across a restart"
    # scaled away
    manager.apply(replace(spec, replicas=1))
    wait_for(lambda: _settled(manager, 1, "iris/1"), timeout=60, what="one replica")
    (kept,) = _replicas(manager)
    assert _dirs(root) == {kept.id}
    # replaced by a rolling update
    manager.apply(replace(spec, replicas=1, template=Template(model="iris/2")))
    wait_for(lambda: _settled(manager, 1, "iris/2"), timeout=60, what="the new revision")
    (new,) = _replicas(manager)
    assert new.id != kept.id and _dirs(root) == {new.id}
    # the deployment deleted
    manager.delete("web", timeout=30)
    assert _dirs(root) == set()
    manager.close()


class _LostDatabase(InMemoryDeploymentStateStore):
    """A store whose commits fail while ``lost`` is set."""

    lost = False

    def commit(self, name: str, writes: Sequence[Write]) -> None:
        if self.lost:
            raise ConnectionError("the database went away")
        super().commit(name, writes)


def test_replicas_a_sync_started_but_could_not_record_leave_no_directory(tmp_path: Path) -> None:
    engine = LocalEngine(log_dir=tmp_path / "logs", argv=lambda rid, command: SLEEP)
    store = _LostDatabase()
    manager = DeploymentManager(store=store, engine=engine, background_stops=False)
    manager.apply(DeploymentSpec(name="web", template=Template(model="iris/1"), replicas=2))
    store.lost = True
    with pytest.raises(ConnectionError, match="the database went away"):
        manager.sync("web")  # it started two replicas, then could not record them
    assert _dirs(engine.work_root) == set()
    manager.close()
