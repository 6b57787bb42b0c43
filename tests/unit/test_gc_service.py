"""Housekeeping against an in-memory store, real folders and the real local registry: what a pass deletes."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaunch.adapters.local.registry import LocalRegistry
from relaunch.domain.model import Delivery, PipelineRun, RunState, Trigger
from relaunch.domain.retention import DAY_S, RetentionPolicy
from relaunch.service.gc import Housekeeping, Pipeline
from tests.fakes import FakeStore

NOW = 100 * DAY_S


def _run(run_id: str, state: RunState, created_at: float) -> PipelineRun:
    trigger = Trigger(kind="push", delivery_key=f"d-{run_id}", sha="a" * 40)
    return PipelineRun(id=run_id, pipeline="digits", trigger=trigger, state=state, created_at=created_at)


def _world(tmp_path: Path, policy: RetentionPolicy) -> tuple[Housekeeping, FakeStore, LocalRegistry]:
    store = FakeStore()
    for n, state in enumerate([RunState.PROMOTED, RunState.REJECTED, RunState.FAILED, RunState.TRAINING]):
        run = _run(f"r{n}", state, NOW - 1000 + n)
        store.record_delivery(Delivery(key=f"k{n}", source="github", body="x" * 100, received_at=run.created_at), [run])
        (tmp_path / "ws" / run.id).mkdir(parents=True)
        (tmp_path / "ws" / run.id / "train.py").write_text("print(1)\n" * 10)
    models = tmp_path / "model"
    models.mkdir()
    (models / "model.joblib").write_bytes(b"m" * 64)
    registry = LocalRegistry(tmp_path / "registry")
    for n in range(4):
        registry.register("digits", f"r{n}", str(models), {"acc": 0.9})
    registry.set_champion("digits", "v1")
    gc = Housekeeping(
        store,
        policy,
        folders={"workspace": tmp_path / "ws"},
        registry=registry,
        pipelines=lambda: [Pipeline("digits", lambda: {"v2"})],
        clock=lambda: NOW,
    )
    return gc, store, registry


def test_a_dry_run_lists_with_sizes_and_deletes_nothing(tmp_path: Path) -> None:
    gc, store, registry = _world(tmp_path, RetentionPolicy(workspaces=1, versions=1, body_days=0))
    report = gc.collect(dry_run=True)
    assert sorted((r.kind, r.name) for r in report.removals) == [
        ("body", "k0"), ("body", "k1"), ("body", "k2"), ("body", "k3"),
        ("version", "digits:v3"),  # v4 is the newest, v1 the champion, v2 deployed
        ("workspace", "r0"), ("workspace", "r1"),  # r2 is the newest finished run, r3 still trains
    ]  # fmt: skip
    assert report.freed == 4 * 100 + 64 + 2 * 90 and report.errors == []
    assert sorted(p.name for p in (tmp_path / "ws").iterdir()) == ["r0", "r1", "r2", "r3"]
    assert [v.version for v in registry.list_versions("digits")] == ["v1", "v2", "v3", "v4"]
    assert store.deliveries["k0"].body


def test_a_pass_deletes_what_the_dry_run_listed_and_a_second_pass_finds_nothing(tmp_path: Path) -> None:
    gc, store, registry = _world(tmp_path, RetentionPolicy(workspaces=1, versions=1, body_days=0))
    listed = gc.collect(dry_run=True)
    done = gc.collect()
    assert done.removals == listed.removals
    assert sorted(p.name for p in (tmp_path / "ws").iterdir()) == ["r2", "r3"]
    assert [v.version for v in registry.list_versions("digits")] == ["v1", "v2", "v4"]
    assert not (tmp_path / "registry" / "digits" / "v3").exists()
    assert store.deliveries["k0"].body == "" and store.deliveries["k0"].run_ids == ["r0"]
    assert gc.collect().removals == []


def test_a_folder_whose_run_is_active_again_at_the_last_check_stays(tmp_path: Path) -> None:
    gc, store, _ = _world(tmp_path, RetentionPolicy(workspaces=0))
    (tmp_path / "ws" / "ghost").mkdir()  # no such run, just made: left alone for the grace period

    original = store.get_run  # r0 reads as in flight at the check right before its folder would go
    calls: dict[str, int] = {}

    def get_run(run_id: str) -> PipelineRun | None:
        calls[run_id] = calls.get(run_id, 0) + 1
        run = original(run_id)
        if run_id == "r0" and calls[run_id] > 1 and run is not None:
            return run.model_copy(update={"state": RunState.TRAINING})
        return run

    store.get_run = get_run  # type: ignore[method-assign]
    report = gc.collect()
    assert "workspace r0: its run is in flight now" in report.kept
    assert sorted(p.name for p in (tmp_path / "ws").iterdir()) == ["ghost", "r0", "r3"]


def test_the_champion_is_never_deleted_and_an_unanswering_endpoint_keeps_every_version(tmp_path: Path) -> None:
    gc, _, registry = _world(tmp_path, RetentionPolicy(versions=1))
    with pytest.raises(ValueError, match="v1 is the champion"):
        registry.delete_version("digits", "v1")
    assert not registry.delete_version("digits", "v99")

    def down() -> set[str]:
        raise ConnectionError("endpoint server not running")

    gc.pipelines = lambda: [Pipeline("digits", down)]
    report = gc.collect()
    assert [v.version for v in registry.list_versions("digits")] == ["v1", "v2", "v3", "v4"]
    assert report.errors == [
        "versions of digits kept whole: its endpoint cannot be asked (endpoint server not running)"
    ]


def test_one_pass_per_interval_whatever_the_callers() -> None:
    store, now = FakeStore(), [NOW]
    gc = Housekeeping(store, RetentionPolicy(), clock=lambda: now[0])
    assert gc.due(3600) and not gc.due(3600)
    now[0] += 3599
    assert not Housekeeping(store, RetentionPolicy(), clock=lambda: now[0]).due(3600)
    now[0] += 2
    assert Housekeeping(store, RetentionPolicy(), clock=lambda: now[0]).due(3600)
