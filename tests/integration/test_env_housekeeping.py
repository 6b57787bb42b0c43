"""Housekeeping of the local build's Python environments: an environment goes only when no checkout that stays names
it and no build used it for RETAIN_ENV_DAYS, and never while a build reuses it (both hold its lock file)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from relaunch.adapters.local.pyenv import MARKER, RECORD, PrunableEnvironments
from relaunch.adapters.local.registry import LocalRegistry
from relaunch.domain.dependencies import Declared
from relaunch.domain.model import Delivery, PipelineRun, RunState, Trigger
from relaunch.domain.retention import DAY_S, RetentionPolicy
from relaunch.service.gc import Housekeeping, Pipeline
from tests.fakes import FakeStore

NOW = 1000 * DAY_S
OLD, NAMED, FRESH = "a" * 16, "b" * 16, "c" * 16  # environment hashes


def _env(root: Path, name: str, last_used: float) -> None:
    (root / name / "lib").mkdir(parents=True)
    (root / name / "lib" / "module.py").write_text("x = 1\n" * 100)
    (root / name / RECORD).write_text("{}\n")
    os.utime(root / name / RECORD, (last_used, last_used))


def _world(tmp_path: Path) -> tuple[Housekeeping, PrunableEnvironments]:
    envs, workspaces = tmp_path / "envs", tmp_path / "workspaces"
    for name in (OLD, NAMED):
        _env(envs, name, NOW - 30 * DAY_S)
    _env(envs, FRESH, NOW - DAY_S)
    store = FakeStore()
    for n, (state, env) in enumerate([(RunState.PROMOTED, OLD), (RunState.REJECTED, NAMED)]):
        trigger = Trigger(kind="push", delivery_key=f"d{n}", sha="a" * 40)
        run = PipelineRun(id=f"r{n}", pipeline="digits", trigger=trigger, state=state, created_at=NOW - 10 + n)
        store.record_delivery(Delivery(key=f"d{n}", source="github", body="{}", received_at=NOW), [run])
        (workspaces / run.id).mkdir(parents=True)
        (workspaces / run.id / MARKER).write_text(env + "\n")
    pruning = PrunableEnvironments(envs, workspaces)
    folders: dict[Literal["workspace", "artifacts"], Path] = {"workspace": workspaces}
    gc = Housekeeping(store, RetentionPolicy(workspaces=1), folders=folders, environments=pruning, clock=lambda: NOW)
    return gc, pruning


def test_an_idle_environment_goes_with_the_last_checkout_that_named_it(tmp_path: Path) -> None:
    gc, pruning = _world(tmp_path)
    assert pruning.named_by_checkouts() == {"r0": OLD, "r1": NAMED}
    planned = gc.collect(dry_run=True)
    # r0's checkout goes (r1 is the newest finished run, the one kept), so OLD is named by no checkout that stays.
    assert sorted((r.kind, r.name) for r in planned.removals) == [("environment", OLD), ("workspace", "r0")]
    assert {e.name for e in pruning.environments()} == {OLD, NAMED, FRESH}  # a dry run deletes nothing
    done = gc.collect()
    assert sorted((r.kind, r.name) for r in done.removals) == [("environment", OLD), ("workspace", "r0")]
    assert {e.name for e in pruning.environments()} == {NAMED, FRESH} and done.freed > 600


def test_an_environment_a_build_reused_meanwhile_is_not_deleted(tmp_path: Path) -> None:
    _gc, pruning = _world(tmp_path)
    wanted = Declared(source="requirements.txt", requirements=("relaunchprobe==1.0",))
    assert pruning._ensure(OLD, wanted) is None  # a build reuses OLD now: no install, its last use is now
    assert not pruning.delete_idle(OLD, idle_since=NOW - 14 * DAY_S)
    assert (tmp_path / "envs" / OLD / RECORD).is_file()
    assert pruning.delete_idle(NAMED, idle_since=NOW - 14 * DAY_S)  # idle: deleted, whole
    assert not (tmp_path / "envs" / NAMED).exists() and not list((tmp_path / "envs").glob(f".{NAMED}*"))


def test_an_environment_a_registered_version_was_trained_in_is_kept(tmp_path: Path) -> None:
    _world(tmp_path)
    pruning = PrunableEnvironments(tmp_path / "envs", tmp_path / "no-checkouts")  # no checkout names any
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.joblib").write_bytes(b"m")
    registry = LocalRegistry(tmp_path / "registry")
    registry.register("digits", "r0", str(model), {"accuracy": 0.9}, {"python_environment": OLD})
    store = FakeStore()
    gc = Housekeeping(
        store,
        RetentionPolicy(),
        registry=registry,
        environments=pruning,
        pipelines=lambda: [Pipeline("digits", set)],
        clock=lambda: NOW,
    )
    removed = {r.name for r in gc.collect(dry_run=True).removals if r.kind == "environment"}
    assert removed == {NAMED}  # both idle and named by no checkout; OLD is v1's (the endpoint serves v1 in it)
