"""Every query the store runs on a listing or ingest path is answered through an index, so it costs the same at
100,000 runs as at 100: SQLite's own EXPLAIN QUERY PLAN of each statement, as the store sent it, is the evidence.

A plan step "SCAN t" (no index) reads the whole table; "USE TEMP B-TREE" sorts everything the query found. Neither
may appear. Where a query must read only a subset (the runs in flight, the rows still holding a body), the index
that holds exactly that subset must be the one chosen.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from relaunch.adapters.local.sqlite_store import SqliteRunStore, StoryFeed
from relaunch.domain.environments import PromotionRecord
from relaunch.domain.model import RunState
from relaunch.domain.story import Cursor
from tests.contract.builders import make_delivery, make_run

FULL_SCAN = re.compile(r"^SCAN \w+$")  # "SCAN runs USING INDEX ..." walks an index in order, bounded by LIMIT


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteRunStore]:
    store = SqliteRunStore(tmp_path / "relaunch.db")
    store.record_delivery(make_delivery("k1"), [make_run("r1", "churn", 1.0), make_run("r2", "churn", 2.0)])
    store.put_effect("r1", "cost", {"n": 1})
    yield store
    store.close()


def plans(store: SqliteRunStore, call: Callable[[SqliteRunStore], object]) -> dict[str, list[str]]:
    """The plan of every SELECT `call` makes, by statement (traced as SQLite ran it, parameters bound)."""
    seen: list[str] = []
    conns = [store._pool.get(), store._pool.writer()]  # reads, and the write transactions (the inbox's)
    for conn in conns:
        conn.set_trace_callback(seen.append)
    try:
        call(store)
    finally:
        for conn in conns:
            conn.set_trace_callback(None)
    explain = sqlite3.connect(store.path)
    try:
        return {sql: [row[3] for row in explain.execute(f"EXPLAIN QUERY PLAN {sql}")] for sql in seen if _read(sql)}
    finally:
        explain.close()


def _read(sql: str) -> bool:
    return sql.lstrip().upper().startswith("SELECT")


def promotion() -> PromotionRecord:
    fields = {"pipeline": "churn", "environment": "prod", "version": "v1", "run_id": "r1", "sha": "abc123", "at": 1.0}
    return PromotionRecord.model_validate(fields)


LISTINGS: dict[str, tuple[Callable[[SqliteRunStore], object], str | None]] = {
    "list_runs": (lambda s: s.list_runs(limit=20), None),
    "list_runs of a pipeline": (lambda s: s.list_runs("churn", limit=20), None),
    "list_runs page": (lambda s: s.list_runs(limit=20, before="r2"), None),
    "list_runs page of a pipeline": (lambda s: s.list_runs("churn", limit=20, before="r2"), None),
    "active_runs": (lambda s: s.active_runs("churn"), "runs_in_flight"),
    "runs_since": (lambda s: s.runs_since("churn", 1.5), None),
    "list_deliveries": (lambda s: s.list_deliveries(20), None),
    "stored_bodies": (lambda s: s.stored_bodies(10.0**10), "inbox_holding_body"),
    "list_effects": (lambda s: s.list_effects("cost"), "effects_by_step"),
    "promotions": (lambda s: s.promotions("churn"), None),
    "promotions of an environment": (lambda s: s.promotions("churn", "prod"), None),
    "timeline": (lambda s: s.timeline("r1"), None),
    "list_dead_letters": (lambda s: s.list_dead_letters(20), None),
    "record_delivery": (lambda s: s.record_delivery(make_delivery("k2"), [make_run("r3", "churn", 3.0)]), None),
    "record_delivery with a content key": (
        lambda s: s.record_delivery(make_delivery("k3"), [make_run("r4").model_copy(update={"content_key": "c4"})]),
        "runs_by_content",
    ),
    "get_delivery": (lambda s: s.get_delivery("k1"), None),
    "lane_head": (lambda s: s.lane_head("churn:main"), None),
    "story feed": (lambda s: StoryFeed(s).after(Cursor(delivery=0, entry=0)), None),
}


@pytest.mark.parametrize("name", LISTINGS)
def test_every_query_reads_through_an_index(store: SqliteRunStore, name: str) -> None:
    store.record_promotion(promotion())
    call, index = LISTINGS[name]

    found = plans(store, call)

    assert found, f"{name} ran no SELECT"
    for sql, steps in found.items():
        assert not [s for s in steps if FULL_SCAN.match(s) and not s.startswith("SCAN dead_letters")], (sql, steps)
        assert not [s for s in steps if "TEMP B-TREE" in s], (sql, steps)
    if index is not None:
        assert any(index in step for steps in found.values() for step in steps), (name, found)


def test_the_in_flight_index_holds_exactly_the_states_that_are_not_terminal(store: SqliteRunStore) -> None:
    """The partial index names the terminal states in its WHERE: a state added to the enum must reach it too."""
    run = store.get_run("r1")
    assert run is not None
    store.save_run(run.model_copy(update={"state": RunState.PROMOTED}))

    assert [r.id for r in store.active_runs("churn")] == ["r2"]
    conn = store._pool.get()
    [sql] = [row[0] for row in conn.execute("SELECT sql FROM sqlite_master WHERE name = 'runs_in_flight'")]
    named = set(re.findall(r"'([a-z_]+)'", sql))
    assert named == {state.value for state in RunState if state.terminal}
