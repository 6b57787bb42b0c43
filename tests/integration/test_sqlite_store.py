"""SqliteRunStore against a real SQLite file: threads and processes sharing it, reopening, checkpoints.

The RunStore contract it shares with the fake and Firestore lives in tests/contract.
"""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest

from relaunch.adapters.local.sqlite_store import SqliteRunStore
from relaunch.domain.model import Delivery, PipelineRun, RunState, TimelineEntry, Trigger
from relaunch.domain.ports import ConflictError


def make_run(run_id: str) -> PipelineRun:
    trigger = Trigger(kind="push", delivery_key=f"d-{run_id}", repo="acme/churn", sha="abc123")
    return PipelineRun(id=run_id, pipeline="churn", trigger=trigger, created_at=1000.0, updated_at=1000.0)


def make_delivery(key: str) -> Delivery:
    return Delivery(key=key, source="github", headers={"X-GitHub-Event": "push"}, body='{"ref": "refs/heads/main"}')


@pytest.fixture
def store(tmp_path: Path) -> SqliteRunStore:
    return SqliteRunStore(tmp_path / "nested" / "relaunch.db")


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


def test_the_lane_head_is_taken_by_exactly_one_of_many_threads(store: SqliteRunStore) -> None:
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
