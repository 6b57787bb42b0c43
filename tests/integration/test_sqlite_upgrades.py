"""Files made by an older relaunch keep working: opened by this one, they are upgraded in place (the content claims
folded into the runs, the timeline and the bus's messages without AUTOINCREMENT, the bus's deliveries WITHOUT
ROWID), every row kept with its id, and dedupe, the story feed's cursors and pending deliveries carry on."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from relaunch.adapters.local.bus import SqliteBus
from relaunch.adapters.local.sqlite_inbox import Outbox
from relaunch.adapters.local.sqlite_store import SqliteRunStore, StoryFeed
from relaunch.domain.model import TimelineEntry
from relaunch.domain.story import Cursor
from tests.contract.builders import make_delivery, make_run

# The schema relaunch wrote before (the inbox as it was before retention, without body_dropped_at).
OLD_STORE = """
CREATE TABLE runs (
    id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, state TEXT NOT NULL, version INTEGER NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, json TEXT NOT NULL);
CREATE INDEX runs_by_created ON runs (created_at);
CREATE INDEX runs_by_pipeline ON runs (pipeline, created_at);
CREATE TABLE timeline (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, at REAL NOT NULL, kind TEXT NOT NULL,
    message TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX timeline_by_run ON timeline (run_id, seq);
CREATE TABLE inbox (
    key TEXT PRIMARY KEY, source TEXT NOT NULL, received_at REAL NOT NULL, headers TEXT NOT NULL,
    body TEXT NOT NULL, outcome TEXT NOT NULL, run_ids TEXT NOT NULL);
CREATE TABLE content (key TEXT PRIMARY KEY, run_id TEXT NOT NULL);
"""
OLD_BUS = """
CREATE TABLE bus_subscriptions (name TEXT PRIMARY KEY, topic TEXT NOT NULL, push_url TEXT NOT NULL);
CREATE TABLE bus_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, data TEXT NOT NULL, attributes TEXT NOT NULL,
    published_at REAL NOT NULL);
CREATE TABLE bus_deliveries (
    message_id INTEGER NOT NULL, subscription TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL, leased_until REAL NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '', PRIMARY KEY (message_id, subscription));
CREATE INDEX bus_deliveries_due ON bus_deliveries (state, next_attempt_at);
"""


def old_store(path: Path) -> None:
    """A store as an older relaunch left it: two runs (r-1 holding content c-1), their timelines, one delivery."""
    conn = sqlite3.connect(path)
    conn.executescript(OLD_STORE)
    for n, content in ((1, "c-1"), (2, None)):
        run = make_run(f"r-{n}", created_at=float(n)).model_copy(update={"content_key": content})
        row = (
            run.id,
            run.pipeline,
            run.state.value,
            run.version,
            run.created_at,
            run.updated_at,
            run.model_dump_json(),
        )
        conn.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)", row)
        for message in ("received", "building"):
            conn.execute(
                "INSERT INTO timeline (run_id, at, kind, message, data) VALUES (?, 1, 'state', ?, '{}')",
                (run.id, message),
            )
    conn.execute("INSERT INTO content VALUES ('c-1', 'r-1')")
    conn.execute("INSERT INTO inbox VALUES ('k-1', 'github', 1, '{}', '{}', 'accepted', ?)", (json.dumps(["r-1"]),))
    conn.commit()
    conn.close()


def schema_of(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        return {name: sql or "" for name, sql in conn.execute("SELECT name, sql FROM sqlite_schema")}


def test_an_old_store_keeps_its_rows_its_claims_and_its_timeline_order(tmp_path: Path) -> None:
    path = tmp_path / "relaunch.db"
    old_store(path)
    store = SqliteRunStore(path)
    assert [run.id for run in store.list_runs()] == ["r-2", "r-1"]
    assert [e.message for e in store.timeline("r-1")] == ["received", "building"]
    assert store.get_delivery("k-1").run_ids == ["r-1"]  # type: ignore[union-attr]
    assert StoryFeed(store).head() == Cursor(delivery=1, entry=4)  # the seqs a follower's cursor counts in
    again = make_run("r-3").model_copy(update={"content_key": "c-1"})
    recorded = store.record_delivery(make_delivery("k-2"), [again])
    assert recorded and recorded.held == {"r-3": "r-1"}, "the old claim still holds"
    assert store.get_run("r-3") is None
    store.append_timeline("r-2", TimelineEntry(kind="note", message="after"))
    _, entries = StoryFeed(store).after(Cursor(delivery=1, entry=4))
    assert [(row.seq, row.run_id, row.entry.message) for row in entries] == [(5, "r-2", "after")]
    schema = schema_of(path)
    assert "content" not in schema and "AUTOINCREMENT" not in schema["timeline"].upper()
    assert {"timeline_by_run", "runs_by_content", "runs_in_flight", "inbox_holding_body"} <= set(schema)
    store.close()
    reopened = SqliteRunStore(path)  # an upgraded file opens as any other
    assert reopened.record_delivery(make_delivery("k-3"), [make_run("r-4").model_copy(update={"content_key": "c-4"})])
    assert reopened.record_delivery(make_delivery("k-4"), [make_run("r-5").model_copy(update={"content_key": "c-4"})])
    assert reopened.get_run("r-4") is not None and reopened.get_run("r-5") is None
    reopened.close()


def old_bus(path: Path) -> sqlite3.Connection:
    """A bus file of the old schema with the orchestrator's subscription, its connection still open."""
    conn = sqlite3.connect(path)
    conn.executescript(OLD_BUS)
    conn.execute("INSERT INTO bus_subscriptions VALUES ('orchestrator', 'commands', 'http://127.0.0.1:9/')")
    return conn


def test_an_old_bus_keeps_its_messages_ids_and_pending_deliveries(tmp_path: Path) -> None:
    path = tmp_path / "bus.db"
    conn = old_bus(path)
    for n in (1, 2):
        conn.execute("INSERT INTO bus_messages (topic, data, attributes, published_at) VALUES ('commands', ?, '{}', 1)",
                     (json.dumps({"n": n}),))  # fmt: skip
    conn.execute("INSERT INTO bus_deliveries VALUES (1, 'orchestrator', 'dead', 5, 1, 0, 'HTTP 500')")
    conn.execute("INSERT INTO bus_deliveries (message_id, subscription, next_attempt_at) VALUES (2, 'orchestrator', 1)")
    conn.commit()
    conn.close()
    bus = SqliteBus(path)
    assert bus.pending_count() == 1
    assert [(d.message_id, d.data, d.last_error) for d in bus.dead_deliveries()] == [("1", {"n": 1}, "HTTP 500")]
    assert bus.publish("commands", {"n": 3}) == "3"
    assert bus.pending_count() == 2
    schema = schema_of(path)
    assert "AUTOINCREMENT" not in schema["bus_messages"].upper()
    assert "WITHOUT ROWID" in schema["bus_deliveries"].upper() and "bus_deliveries_due" in schema
    bus.close()


def test_a_store_whose_outbox_is_an_old_bus_upgrades_it_and_publishes_into_it(tmp_path: Path) -> None:
    bus_path = tmp_path / "bus.db"
    conn = old_bus(bus_path)
    conn.commit()
    conn.close()
    old_store(tmp_path / "relaunch.db")
    store = SqliteRunStore(tmp_path / "relaunch.db", Outbox(bus_path, "commands"))
    assert store.record_delivery(make_delivery("k-2"), [make_run("r-3")]).started
    store.close()
    with sqlite3.connect(bus_path) as conn:
        rows = conn.execute("SELECT m.data, d.state FROM bus_messages m JOIN bus_deliveries d ON d.message_id = m.id")
        assert [(json.loads(data), state) for data, state in rows] == [
            ({"type": "start_run", "run_id": "r-3"}, "pending")
        ]
