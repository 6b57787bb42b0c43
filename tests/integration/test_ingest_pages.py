"""What a push's commit writes, page by page: each WAL frame's page is named by the B-tree it belongs to (SQLite's
dbstat), so the test says which tables and indexes a delivery touches. Each one is a page (or more) written and
synced before the 2xx; only those that a query or a guarantee needs may be there (benchmarks/ingest_pages.py counts
the pages over many deliveries)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from relaunch.adapters.local import sqlite as sqlite_plumbing
from relaunch.adapters.local.bus import SqliteBus
from tests.integration.test_ingest_one_transaction import app_at, deliver

WAL_HEADER, FRAME_HEADER = 32, 24
STORE = {
    "inbox",  # the delivery (+ its body), by key (dedupe), by time (listing), holding a body (retention)
    "sqlite_autoindex_inbox_1",
    "inbox_by_received",
    "inbox_holding_body",
    "runs",  # the run, by id, by time (relaunch runs), by pipeline (runs_since), in flight (active_runs), by content
    "sqlite_autoindex_runs_1",
    "runs_by_created",
    "runs_by_pipeline",
    "runs_in_flight",
    "runs_by_content",
    "timeline",  # its first entry, by run
    "timeline_by_run",
}
BUS = {"bus_messages", "bus_deliveries", "bus_deliveries_due"}  # the start_run command and its pending delivery
HEADER = {"sqlite_schema"}  # page 1, which holds the file's size in pages: written when the file grows


def btrees_written(path: Path) -> set[str]:
    """The B-trees whose pages the file's WAL holds."""
    with sqlite3.connect(path) as conn:
        page = int(conn.execute("PRAGMA page_size").fetchone()[0])
        owner = dict(conn.execute("SELECT pageno, name FROM dbstat"))
    data = Path(f"{path}-wal").read_bytes()
    pages = {int.from_bytes(data[at : at + 4], "big") for at in range(WAL_HEADER, len(data), page + FRAME_HEADER)}
    return {owner.get(number, f"page {number}") for number in pages}


def test_a_push_writes_only_the_btrees_it_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with sqlite3.connect(":memory:") as probe:
        if not probe.execute(
            "SELECT 1 FROM pragma_compile_options WHERE compile_options = 'ENABLE_DBSTAT_VTAB'"
        ).fetchone():
            pytest.skip("this SQLite has no dbstat")
    monkeypatch.setattr(sqlite_plumbing, "CHECKPOINT_INTERVAL_S", 10.0**9)  # the WALs hold every frame written
    app = app_at(tmp_path)
    subscriber = SqliteBus(app.settings.bus_path)  # the orchestrator's subscription (nobody dispatches here)
    subscriber.subscribe("orchestrator", app.settings.pubsub_commands_topic, "http://127.0.0.1:9/")
    subscriber.close()
    deliver(app, "a" * 40, "warm")  # opening files, creating schemas
    for name in ("relaunch.db", "bus.db"):
        with sqlite3.connect(tmp_path / name) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert deliver(app, "b" * 40, "d-1")[0] == 202
    store, bus = btrees_written(tmp_path / "relaunch.db"), btrees_written(tmp_path / "bus.db")
    assert STORE <= store <= STORE | HEADER, f"extra: {store - STORE - HEADER}, missing: {STORE - store}"
    assert BUS <= bus <= BUS | HEADER, f"extra: {bus - BUS - HEADER}, missing: {BUS - bus}"
