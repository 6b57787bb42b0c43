"""FirestoreRunStore's coalescing and ledger queries against the emulator: active runs, effects by step."""

from __future__ import annotations

from relaunch.adapters.gcp.firestore_store import FirestoreRunStore
from relaunch.domain.model import Delivery, PipelineRun, RunState, Trigger


def _run(n: int, state: RunState, pipeline: str = "digits") -> PipelineRun:
    trigger = Trigger(kind="push", delivery_key=f"d{n}")
    return PipelineRun(id=f"{pipeline}-{n}", pipeline=pipeline, trigger=trigger, state=state, created_at=float(n))


def test_active_runs_are_the_pipelines_unfinished_runs_oldest_first(store: FirestoreRunStore) -> None:
    runs = [_run(3, RunState.TRAINING), _run(1, RunState.RECEIVED), _run(2, RunState.SUPERSEDED)]
    store.record_delivery(Delivery(key="k", source="github"), [*runs, _run(4, RunState.BUILDING, "other")])
    assert [r.id for r in store.active_runs("digits")] == ["digits-1", "digits-3"]
    moved = store.get_run("digits-1")
    assert moved is not None
    store.save_run(moved.model_copy(update={"state": RunState.FAILED}))
    assert [r.id for r in store.active_runs("digits")] == ["digits-3"]


def test_list_effects_by_step_first_write_wins(store: FirestoreRunStore) -> None:
    store.put_effect("a", "cost", {"n": 1})
    store.put_effect("b", "notify:build:pending", {"n": 2})
    store.put_effect("c", "cost", {"n": 3})
    store.put_effect("a", "cost", {"n": 9})
    assert store.list_effects("cost") == [{"n": 1}, {"n": 3}]
