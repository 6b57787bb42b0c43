"""The Runs contract on every store: optimistic versions, conflicts that change nothing, newest-first listings."""

from __future__ import annotations

import pytest

from relaunch.domain.model import Delivery, RunState, TimelineEntry
from relaunch.domain.ports import ConflictError, RunStore
from tests.contract.builders import make_delivery, make_run


def test_save_run_bumps_version_and_appends_entries(store: RunStore) -> None:
    store.record_delivery(make_delivery("k1"), [make_run("r1")])
    run = store.get_run("r1")
    assert run is not None

    notes = [TimelineEntry(kind="note", message="x"), TimelineEntry(kind="note", message="y", data={"n": [1, 2]})]

    saved = store.save_run(run.model_copy(update={"state": RunState.BUILDING}), notes)

    assert saved.version == run.version + 1
    assert store.get_run("r1") == saved
    assert [e.message for e in store.timeline("r1")] == ["received", "x", "y"]
    assert store.timeline("r1")[2] == notes[1]


def test_stale_copy_conflicts_and_changes_nothing(store: RunStore) -> None:
    store.record_delivery(make_delivery("k1"), [make_run("r1")])
    first, second = store.get_run("r1"), store.get_run("r1")
    assert first is not None and second is not None
    store.save_run(first.model_copy(update={"state": RunState.BUILDING}))

    with pytest.raises(ConflictError, match="saved at version 0, store has 1"):
        store.save_run(second.model_copy(update={"state": RunState.FAILED}), [TimelineEntry(kind="note", message="x")])

    assert store.get_run("r1").state is RunState.BUILDING  # type: ignore[union-attr]
    assert [e.message for e in store.timeline("r1")] == ["received"]


def test_saving_an_unknown_run_is_not_a_conflict(store: RunStore) -> None:
    with pytest.raises(KeyError):
        store.save_run(make_run("ghost"))

    assert store.get_run("ghost") is None


def test_list_runs_newest_first_filtered_and_limited(store: RunStore) -> None:
    runs = [make_run("a", "churn", 1.0), make_run("b", "fraud", 2.0), make_run("c", "churn", 3.0)]
    store.record_delivery(make_delivery("k1"), runs)

    assert [r.id for r in store.list_runs()] == ["c", "b", "a"]
    assert [r.id for r in store.list_runs(pipeline="churn")] == ["c", "a"]
    assert [r.id for r in store.list_runs(limit=1)] == ["c"]
    assert store.list_runs(pipeline="nope") == []


def test_active_runs_are_the_pipelines_unfinished_runs_oldest_first(store: RunStore) -> None:
    runs = [
        make_run("digits-3", "digits", 3.0, RunState.TRAINING),
        make_run("digits-1", "digits", 1.0, RunState.RECEIVED),
        make_run("digits-2", "digits", 2.0, RunState.SUPERSEDED),
    ]
    store.record_delivery(Delivery(key="k", source="github"), [*runs, make_run("other-4", "other", 4.0)])
    assert [r.id for r in store.active_runs("digits")] == ["digits-1", "digits-3"]
    moved = store.get_run("digits-1")
    assert moved is not None
    store.save_run(moved.model_copy(update={"state": RunState.FAILED}))
    assert [r.id for r in store.active_runs("digits")] == ["digits-3"]
