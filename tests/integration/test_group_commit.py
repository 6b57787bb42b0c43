"""Group commit on a real SQLite file: concurrent writers share transactions, each gets its own result or error."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from relaunch.adapters.local.group_commit import GroupCommit
from relaunch.adapters.local.sqlite import ConnectionPool, init_schema
from relaunch.adapters.local.sqlite_store import SqliteRunStore
from relaunch.domain.model import Delivery, PipelineRun, Trigger
from relaunch.domain.ports import Recorded
from tests.integration.conftest import wait_until


class Recorder:
    """Inserts each item as a row; remembers batch sizes; raises on "bad" items.

    The first batch holds its transaction until `others` more items are queued behind it (read from the GroupCommit's
    queue, not guessed from a sleep), so the test knows the rest share batches.
    """

    def __init__(self, others: int = 0) -> None:
        self.batches: list[list[str]] = []
        self.others = others
        self.commit: GroupCommit[str, int] | None = None

    def __call__(self, conn: sqlite3.Connection, items: Sequence[str]) -> list[int]:
        self.batches.append(list(items))
        if len(self.batches) == 1 and self.commit is not None:
            wait_until(lambda: len(self.commit._queue) >= self.others, what=f"{self.others} queued items")  # type: ignore[union-attr]
        results: list[int] = []
        for item in items:
            if item == "bad":
                raise ValueError("bad item")
            row = conn.execute("INSERT INTO t (v) VALUES (?)", (item,)).lastrowid
            assert row is not None  # an INSERT always sets it
            results.append(row)
        return results


@pytest.fixture
def pool(tmp_path: Path) -> ConnectionPool:
    init_schema(tmp_path / "g.db", "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT NOT NULL);")
    return ConnectionPool(tmp_path / "g.db")


def rows(pool: ConnectionPool) -> dict[int, str]:
    return dict(pool.get().execute("SELECT id, v FROM t").fetchall())


def test_concurrent_writers_share_transactions_and_each_gets_its_own_result(pool: ConnectionPool) -> None:
    recorder = Recorder(others=8)
    commit: GroupCommit[str, int] = GroupCommit(pool.writer, recorder)
    recorder.commit = commit
    items = [f"item-{i}" for i in range(400)]
    with ThreadPoolExecutor(16) as threads:
        ids = list(threads.map(commit.submit, items))
    assert rows(pool) == dict(zip(ids, items, strict=True))  # every result is the id of that caller's own row
    sizes = [len(batch) for batch in recorder.batches]
    assert sum(sizes) == 400 and len(sizes) < 400 and max(sizes) > 1


def test_a_bad_item_fails_only_its_own_caller(pool: ConnectionPool) -> None:
    recorder = Recorder(others=5)
    commit: GroupCommit[str, int] = GroupCommit(pool.writer, recorder)
    recorder.commit = commit

    def submit(item: str) -> int | str:
        try:
            return commit.submit(item)
        except ValueError as exc:
            return str(exc)

    items = ["b", "bad", "c", "d", "e"]
    with ThreadPoolExecutor(len(items) + 1) as threads:
        first = threads.submit(submit, "a")  # its transaction waits until the others are queued into one batch
        wait_until(lambda: recorder.batches != [], what="the first batch")
        answers = dict(zip(items, threads.map(submit, items), strict=True))
    assert isinstance(first.result(), int) and answers["bad"] == "bad item"
    assert any(len(batch) > 1 and "bad" in batch for batch in recorder.batches)  # it did fail a shared batch
    assert sorted(rows(pool).values()) == ["a", "b", "c", "d", "e"]
    assert all(isinstance(answers[item], int) for item in items if item != "bad")


def test_a_delivery_sent_by_many_threads_at_once_is_written_once(tmp_path: Path) -> None:
    store = SqliteRunStore(tmp_path / "relaunch.db")
    trigger = Trigger(kind="push", delivery_key="github:d-1", repo="acme/churn", sha="abc")
    run = PipelineRun(id="run-1", pipeline="churn", trigger=trigger)
    delivery = Delivery(key="github:d-1", source="github", headers={}, body="{}")
    start = threading.Barrier(12)

    def record(_: int) -> Recorded:
        start.wait()
        return store.record_delivery(delivery, [run])

    with ThreadPoolExecutor(12) as threads:
        written = list(threads.map(record, range(12)))
    assert [bool(w) for w in written].count(True) == 1
    assert store.get_run("run-1") is not None and [e.message for e in store.timeline("run-1")] == ["received"]
