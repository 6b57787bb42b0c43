"""SqliteRunStore against a real SQLite file: atomicity, idempotency, optimistic concurrency, ordering."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest

from relaunch.adapters.local.sqlite_store import SqliteRunStore
from relaunch.domain.model import Delivery, PipelineRun, RunState, TimelineEntry, Trigger
from relaunch.domain.ports import ConflictError


def make_run(run_id: str, pipeline: str = "churn", created_at: float = 1000.0) -> PipelineRun:
    trigger = Trigger(kind="push", delivery_key=f"d-{run_id}", repo="acme/churn", sha="abc123")
    return PipelineRun(id=run_id, pipeline=pipeline, trigger=trigger, created_at=created_at, updated_at=created_at)


def make_delivery(key: str) -> Delivery:
    return Delivery(key=key, source="github", headers={"X-GitHub-Event": "push"}, body='{"ref": "refs/heads/main"}')


@pytest.fixture
def store(tmp_path: Path) -> SqliteRunStore:
    return SqliteRunStore(tmp_path / "nested" / "relaunch.db")


def test_delivery_and_runs_are_written_together(store: SqliteRunStore) -> None:
    assert store.record_delivery(make_delivery("k1"), [make_run("r1"), make_run("r2", pipeline="fraud")])

    delivery = store.get_delivery("k1")
    assert delivery is not None
    assert (delivery.source, delivery.headers, delivery.run_ids) == ("github", {"X-GitHub-Event": "push"}, ["r1", "r2"])
    assert store.get_run("r1") == make_run("r1")
    assert [(e.kind, e.message) for e in store.timeline("r2")] == [("state", "received")]


def test_failed_delivery_transaction_writes_nothing(store: SqliteRunStore) -> None:
    store.record_delivery(make_delivery("k1"), [make_run("r1")])

    with pytest.raises(Exception, match="UNIQUE"):  # r1 exists: the whole second delivery rolls back
        store.record_delivery(make_delivery("k2"), [make_run("r2"), make_run("r1")])

    assert store.get_delivery("k2") is None
    assert store.get_run("r2") is None
    assert store.timeline("r2") == []


def test_duplicate_delivery_returns_false_and_writes_nothing(store: SqliteRunStore) -> None:
    assert store.record_delivery(make_delivery("k1"), [make_run("r1")])

    assert not store.record_delivery(make_delivery("k1"), [make_run("r-dup")])

    assert store.get_run("r-dup") is None
    assert store.timeline("r-dup") == []
    assert [d.key for d in store.list_deliveries()] == ["k1"]


def test_delivery_outcome_and_listing(store: SqliteRunStore) -> None:
    store.record_delivery(make_delivery("old").model_copy(update={"received_at": 1.0}), [])
    store.record_delivery(make_delivery("new").model_copy(update={"received_at": 2.0}), [])

    store.set_delivery_outcome("old", "ignored: branch not tracked")

    assert store.get_delivery("old").outcome == "ignored: branch not tracked"  # type: ignore[union-attr]
    assert [d.key for d in store.list_deliveries()] == ["new", "old"]
    assert [d.key for d in store.list_deliveries(limit=1)] == ["new"]


def test_save_run_bumps_version_and_appends_entries(store: SqliteRunStore) -> None:
    store.record_delivery(make_delivery("k1"), [make_run("r1")])
    run = store.get_run("r1")
    assert run is not None

    note = TimelineEntry(kind="note", message="x")

    saved = store.save_run(run.model_copy(update={"state": RunState.BUILDING}), [note])

    assert saved.version == run.version + 1
    assert store.get_run("r1") == saved
    assert [e.message for e in store.timeline("r1")] == ["received", "x"]


def test_stale_copy_conflicts_and_changes_nothing(store: SqliteRunStore) -> None:
    store.record_delivery(make_delivery("k1"), [make_run("r1")])
    first, second = store.get_run("r1"), store.get_run("r1")
    assert first is not None and second is not None
    store.save_run(first.model_copy(update={"state": RunState.BUILDING}))

    with pytest.raises(ConflictError):
        store.save_run(second.model_copy(update={"state": RunState.FAILED}), [TimelineEntry(kind="note", message="x")])

    assert store.get_run("r1").state is RunState.BUILDING  # type: ignore[union-attr]
    assert [e.message for e in store.timeline("r1")] == ["received"]


def test_saving_an_unknown_run_is_not_a_conflict(store: SqliteRunStore) -> None:
    with pytest.raises(KeyError):
        store.save_run(make_run("ghost"))


def test_concurrent_saves_from_two_threads_exactly_one_wins(store: SqliteRunStore) -> None:
    store.record_delivery(make_delivery("k1"), [make_run("r1")])
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def save(state: RunState) -> None:
        run = store.get_run("r1")
        assert run is not None
        barrier.wait()
        try:
            store.save_run(run.model_copy(update={"state": state}), [TimelineEntry(kind="state", message=state.value)])
            outcomes.append("won")
        except ConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=save, args=(s,)) for s in (RunState.BUILDING, RunState.TRAINING)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)

    assert sorted(outcomes) == ["conflict", "won"]
    final = store.get_run("r1")
    assert final is not None and final.version == 1
    assert [e.message for e in store.timeline("r1")] == ["received", final.state.value]


def _record_in_child(path: str, key: str, run_id: str, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    results.put(bool(SqliteRunStore(Path(path)).record_delivery(make_delivery(key), [make_run(run_id)])))


def test_processes_share_the_file_and_dedupe_across_them(tmp_path: Path) -> None:
    path = tmp_path / "relaunch.db"
    ctx = multiprocessing.get_context("fork")  # Linux; the children open their own store
    results = ctx.Queue()
    procs = [ctx.Process(target=_record_in_child, args=(str(path), "same-key", f"r{i}", results)) for i in range(3)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(10)

    assert sorted(outcomes) == [False, False, True]
    reader = SqliteRunStore(path)
    assert len(reader.list_runs()) == 1
    assert reader.get_delivery("same-key").run_ids == [reader.list_runs()[0].id]  # type: ignore[union-attr]


def test_effects_first_write_wins(store: SqliteRunStore) -> None:
    assert store.get_effect("r1", "submit:train") is None

    store.put_effect("r1", "submit:train", {"job_id": "j1"})
    store.put_effect("r1", "submit:train", {"job_id": "j2"})

    assert store.get_effect("r1", "submit:train") == {"job_id": "j1"}
    assert store.get_effect("r1", "submit:evaluate") is None


def test_timeline_is_oldest_first_in_write_order(store: SqliteRunStore) -> None:
    store.record_delivery(make_delivery("k1"), [make_run("r1")])
    store.append_timeline("r1", TimelineEntry(kind="note", message="one", data={"n": 1}))
    store.append_timeline("r1", TimelineEntry(kind="note", message="two"))
    store.append_timeline("other", TimelineEntry(kind="note", message="elsewhere"))

    entries = store.timeline("r1")

    assert [e.message for e in entries] == ["received", "one", "two"]
    assert entries[1].data == {"n": 1}


def test_list_runs_newest_first_filtered_and_limited(store: SqliteRunStore) -> None:
    runs = [make_run("a", "churn", 1.0), make_run("b", "fraud", 2.0), make_run("c", "churn", 3.0)]
    store.record_delivery(make_delivery("k1"), runs)

    assert [r.id for r in store.list_runs()] == ["c", "b", "a"]
    assert [r.id for r in store.list_runs(pipeline="churn")] == ["c", "a"]
    assert [r.id for r in store.list_runs(limit=1)] == ["c"]
    assert store.list_runs(pipeline="nope") == []


def test_dead_letters_are_kept_newest_first(store: SqliteRunStore) -> None:
    store.dead_letter("orchestrator", "malformed command", '{"type": "nope"}')
    store.dead_letter("drift_alert", "unknown schema", "{}")

    letters = store.list_dead_letters()

    assert [(d.source, d.reason, d.payload) for d in letters] == [
        ("drift_alert", "unknown schema", "{}"),
        ("orchestrator", "malformed command", '{"type": "nope"}'),
    ]


def test_data_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "relaunch.db"
    first = SqliteRunStore(path)
    first.record_delivery(make_delivery("k1"), [make_run("r1")])
    first.close()

    again = SqliteRunStore(path)

    assert again.get_run("r1") == make_run("r1")
    assert not again.record_delivery(make_delivery("k1"), [])


def test_commits_leave_checkpoints_to_the_background_thread(store: SqliteRunStore) -> None:
    """A webhook's commit never pays for a checkpoint's fsync; the WAL is still copied back within seconds."""
    import time

    empty = store.path.stat().st_size
    for i in range(300):
        store.record_delivery(make_delivery(f"k{i}"), [make_run(f"r{i}")])
    [[autocheckpoint]] = store._pool.writer().execute("PRAGMA wal_autocheckpoint").fetchall()
    assert autocheckpoint == 0
    deadline = time.monotonic() + 10
    while store.path.stat().st_size == empty:  # only a checkpoint writes pages into the database file itself
        assert time.monotonic() < deadline, "the WAL was not checkpointed within 10 s"
        time.sleep(0.1)
    assert store.get_delivery("k299") is not None


def test_a_run_whose_content_another_run_holds_is_not_written_and_names_the_holder(store: SqliteRunStore) -> None:
    first = make_run("r1").model_copy(update={"content_key": "churn|push|abc123"})
    same = make_run("r2").model_copy(update={"content_key": "churn|push|abc123"})
    other = make_run("r3", pipeline="fraud").model_copy(update={"content_key": "fraud|push|abc123"})
    assert store.record_delivery(make_delivery("k1"), [first]).held == {}
    recorded = store.record_delivery(make_delivery("k2"), [same, other])
    assert recorded and recorded.held == {"r2": "r1"}
    assert store.get_run("r2") is None and store.get_run("r3") is not None
    assert store.get_delivery("k2").run_ids == ["r3"]  # type: ignore[union-attr]
    twins = [make_run(f"t{i}").model_copy(update={"content_key": "churn|push|def456"}) for i in (1, 2)]
    assert store.record_delivery(make_delivery("k3"), twins).held == {"t2": "t1"}  # twins in one call: first wins


def _record_content_in_child(path: str, key: str, run_id: str, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    run = make_run(run_id).model_copy(update={"content_key": "churn|push|abc123"})
    results.put(SqliteRunStore(Path(path)).record_delivery(make_delivery(key), [run]).held)


def test_processes_recording_one_content_under_different_keys_write_one_run(tmp_path: Path) -> None:
    path = tmp_path / "relaunch.db"
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_record_content_in_child, args=(str(path), f"key-{i}", f"r{i}", results)) for i in range(4)
    ]
    for p in procs:
        p.start()
    held = [results.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(10)
    [run] = SqliteRunStore(path).list_runs()
    assert sorted(map(len, held)) == [0, 1, 1, 1] and all(h == {} or set(h.values()) == {run.id} for h in held)


def test_the_lane_head_moves_only_from_what_the_caller_saw(store: SqliteRunStore) -> None:
    assert store.lane_head("churn|branch|refs/heads/main") is None
    assert store.take_lane("churn|branch|refs/heads/main", None, "r1")
    assert not store.take_lane("churn|branch|refs/heads/main", None, "r2")  # r1 took it first
    assert not store.take_lane("churn|branch|refs/heads/main", "r0", "r2")
    assert store.take_lane("churn|branch|refs/heads/main", "r1", "r2")
    assert store.lane_head("churn|branch|refs/heads/main") == "r2"
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(store.take_lane("churn|pr|a/b#1", None, f"p{i}")))
        for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
