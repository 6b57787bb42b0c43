"""The embedded RunStore on SQLite (WAL): runs, timelines, the inbox, the side-effect ledger, dead letters, lanes."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from relaunch import logs
from relaunch.adapters.local.sqlite import ConnectionPool, init_schema, write_transaction
from relaunch.adapters.local.sqlite_inbox import (
    INSERT_ENTRY,
    OUTBOX_SCHEMA,
    InboxWriter,
    Outbox,
    entry_row,
    marks,
)
from relaunch.adapters.local.sqlite_upgrades import columns, drop_autoincrement, table_sql
from relaunch.domain.environments import PromotionRecord
from relaunch.domain.model import TERMINAL_STATES, DeadLetter, Delivery, PipelineRun, TimelineEntry
from relaunch.domain.ports import ConflictError, Recorded
from relaunch.domain.retention import StoredBody
from relaunch.domain.story import Cursor, DeliveryRow, EntryRow

log = logging.getLogger(__name__)

RUNS = """CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, state TEXT NOT NULL, version INTEGER NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, json TEXT NOT NULL, content_key TEXT)"""
# Never a row deleted: rowids alone grow as AUTOINCREMENT's would (see sqlite_upgrades.drop_autoincrement).
TIMELINE = """CREATE TABLE IF NOT EXISTS timeline (
    seq INTEGER PRIMARY KEY, run_id TEXT NOT NULL, at REAL NOT NULL, kind TEXT NOT NULL,
    message TEXT NOT NULL, data TEXT NOT NULL)"""
TIMELINE_INDEXES = ["CREATE INDEX IF NOT EXISTS timeline_by_run ON timeline (run_id, seq)"]
# A run's content claim (of runs with one content key, the first written is the only one): a column of the run with
# a unique index, not a table of its own, so a delivery writes one B-tree for it, not two. A file made before has its
# `content` table folded in when opened (_upgrade).
RUNS_BY_CONTENT = (
    "CREATE UNIQUE INDEX IF NOT EXISTS runs_by_content ON runs (content_key) WHERE content_key IS NOT NULL"
)
SCHEMA = f"""
{RUNS};
CREATE INDEX IF NOT EXISTS runs_by_created ON runs (created_at);
CREATE INDEX IF NOT EXISTS runs_by_pipeline ON runs (pipeline, created_at);
{TIMELINE};
{";".join(TIMELINE_INDEXES)};
CREATE TABLE IF NOT EXISTS inbox (
    key TEXT PRIMARY KEY, source TEXT NOT NULL, received_at REAL NOT NULL, headers TEXT NOT NULL,
    body TEXT NOT NULL, outcome TEXT NOT NULL, run_ids TEXT NOT NULL, body_dropped_at REAL);
CREATE INDEX IF NOT EXISTS inbox_by_received ON inbox (received_at);
CREATE TABLE IF NOT EXISTS effects (
    run_id TEXT NOT NULL, step TEXT NOT NULL, result TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (run_id, step));
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, source TEXT NOT NULL, reason TEXT NOT NULL,
    payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lanes (lane TEXT PRIMARY KEY, run_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS promotions (
    pipeline TEXT NOT NULL, environment TEXT NOT NULL, run_id TEXT NOT NULL, kind TEXT NOT NULL, version TEXT NOT NULL,
    at REAL NOT NULL, json TEXT NOT NULL, PRIMARY KEY (pipeline, environment, run_id, kind, version));
CREATE INDEX IF NOT EXISTS promotions_by_time ON promotions (pipeline, at);
CREATE INDEX IF NOT EXISTS promotions_by_environment ON promotions (pipeline, environment, at);
CREATE INDEX IF NOT EXISTS effects_by_step ON effects (step, at);
CREATE INDEX IF NOT EXISTS inbox_holding_body ON inbox (received_at) WHERE body != '';
"""
# The runs in flight, apart from the finished ones that pile up: active_runs (every orchestrator step, the reconcile
# tick, coalescing) reads only these. SQLite uses a partial index only for a query whose WHERE repeats its WHERE
# word for word, with literals (never parameters): both are spelled from this one constant.
IN_FLIGHT = f"state NOT IN ({', '.join(repr(s.value) for s in sorted(TERMINAL_STATES))})"
SCHEMA += f"CREATE INDEX IF NOT EXISTS runs_in_flight ON runs (pipeline, created_at) WHERE {IN_FLIGHT};\n"


def _insert_entries(conn: sqlite3.Connection, run_id: str, entries: Sequence[TimelineEntry]) -> None:
    conn.executemany(INSERT_ENTRY, [entry_row(run_id, e) for e in entries])


def _delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(
        key=row["key"],
        source=row["source"],
        received_at=row["received_at"],
        headers=json.loads(row["headers"]),
        body=row["body"],
        outcome=row["outcome"],
        run_ids=json.loads(row["run_ids"]),
        body_dropped_at=row["body_dropped_at"],
    )


class SqliteRunStore:
    """RunStore on one SQLite file, shared safely by threads and by processes."""

    def __init__(self, path: Path, outbox: Outbox | None = None) -> None:
        """`outbox`: the local bus a delivery's runs are started through, in the transaction that writes them."""
        self.path = Path(path)
        init_schema(self.path, SCHEMA)
        self._pool = ConnectionPool(self.path)
        _upgrade(self._pool)
        # The inbox writes through a writer of its own with the bus attached (only there: every other write would
        # lock the bus's file too), or through the store's writer.
        self._inbox_pool = ConnectionPool(self.path, {OUTBOX_SCHEMA: outbox.bus}) if outbox else self._pool
        self._inbox = InboxWriter(self._inbox_pool.writer, outbox)

    def close(self) -> None:
        """Close the connections this store opened."""
        self._pool.close()
        self._inbox_pool.close()

    def record_delivery(self, delivery: Delivery, runs: Sequence[PipelineRun]) -> Recorded:
        """Atomically write the inbox row and its new runs (not those whose content another run holds); see RunStore.

        Concurrent calls of this process share one transaction (group commit); each returns once it is committed,
        with its runs' start commands when the store has an outbox (`started`).
        """
        return self._inbox.record(delivery, runs)

    def get_delivery(self, key: str) -> Delivery | None:
        """The inbox row for `key`, if any."""
        row = self._pool.get().execute("SELECT * FROM inbox WHERE key = ?", (key,)).fetchone()
        return _delivery(row) if row else None

    def set_delivery_outcome(self, key: str, outcome: str) -> None:
        """Record what became of a delivery (e.g. 'ignored: branch not tracked')."""
        self._pool.get().execute("UPDATE inbox SET outcome = ? WHERE key = ?", (outcome, key))

    def list_deliveries(self, limit: int = 50, source: str | None = None) -> list[Delivery]:
        """The inbox (of one source), newest first. A source's rows are found by walking inbox_by_received from the
        newest and skipping the others' rows: no index of its own, which every webhook's insert would pay for."""
        where, args = ("", (limit,)) if source is None else ("WHERE source = ? ", (source, limit))
        sql = f"SELECT * FROM inbox {where}ORDER BY received_at DESC, rowid DESC LIMIT ?"
        return [_delivery(row) for row in self._pool.get().execute(sql, args)]

    def stored_bodies(self, received_before: float) -> list[StoredBody]:
        """Rows received before the time that still hold a body, oldest first (their sizes, not their bodies); the
        rows already emptied are not even read."""
        sql = (
            "SELECT key, source, received_at, outcome, length(CAST(body AS BLOB)) AS size FROM inbox"
            " WHERE received_at < ? AND body != '' ORDER BY received_at, rowid"  # inbox_holding_body
        )
        return [StoredBody(**dict(row)) for row in self._pool.get().execute(sql, (received_before,))]

    def drop_bodies(self, keys: Sequence[str], received_before: float) -> int:
        """Empty the bodies of those rows received before the time (in one transaction); the bytes freed."""
        where = f"key IN ({marks(keys)}) AND received_at < ? AND body != ''"
        with write_transaction(self._pool.writer()) as conn:
            sql = f"SELECT COALESCE(SUM(length(CAST(body AS BLOB))), 0) FROM inbox WHERE {where}"
            size = int(conn.execute(sql, (*keys, received_before)).fetchone()[0]) if keys else 0
            if keys:
                sql = f"UPDATE inbox SET body = '', body_dropped_at = ? WHERE {where}"
                conn.execute(sql, (time.time(), *keys, received_before))
        return size

    def get_run(self, run_id: str) -> PipelineRun | None:
        """The run with this id, if any."""
        row = self._pool.get().execute("SELECT json FROM runs WHERE id = ?", (run_id,)).fetchone()
        return PipelineRun.model_validate_json(row["json"]) if row else None

    def save_run(self, run: PipelineRun, entries: Sequence[TimelineEntry] = ()) -> PipelineRun:
        """Write the run if its `version` is still current (else ConflictError) and append entries, atomically."""
        saved = run.model_copy(update={"version": run.version + 1, "updated_at": time.time()})
        with write_transaction(self._pool.writer()) as conn:
            updated = conn.execute(
                "UPDATE runs SET pipeline = ?, state = ?, version = ?, updated_at = ?, json = ?"
                " WHERE id = ? AND version = ?",
                (
                    saved.pipeline,
                    saved.state.value,
                    saved.version,
                    saved.updated_at,
                    saved.model_dump_json(),
                    run.id,
                    run.version,
                ),
            ).rowcount
            if not updated:
                raise _stale(conn, run)
            _insert_entries(conn, run.id, entries)
        about = "" if logs.bound().get("run_id") == run.id else f" of run {run.id}"  # a line's run= may be another
        for entry in entries:  # the run's story in the log of whichever process moved it
            if entry.kind == "state":
                log.info("state%s: %s", about, entry.message)
        return saved

    def list_runs(self, pipeline: str | None = None, limit: int = 50, before: str | None = None) -> list[PipelineRun]:
        """A page of runs, newest first, optionally of one pipeline; `before`: the page after this run's.

        Keyset pagination on (created_at, rowid), the order of the indexes runs_by_created and runs_by_pipeline: a
        page costs its size wherever it starts (OFFSET would walk every run before it).
        """
        conn, where, params = self._pool.get(), [], []
        if pipeline is not None:
            where, params = ["pipeline = ?"], [pipeline]
        if before is not None:
            cursor = conn.execute("SELECT created_at, rowid FROM runs WHERE id = ?", (before,)).fetchone()
            if cursor is None:
                raise KeyError(f"no run {before!r} to list the runs before")
            where.append("(created_at, rowid) < (?, ?)")
            params += [cursor[0], cursor[1]]
        sql = f"SELECT json FROM runs {'WHERE ' + ' AND '.join(where) if where else ''}"
        rows = conn.execute(f"{sql} ORDER BY created_at DESC, rowid DESC LIMIT ?", (*params, limit))
        return [PipelineRun.model_validate_json(row["json"]) for row in rows]

    def active_runs(self, pipeline: str) -> list[PipelineRun]:
        """The pipeline's runs not yet in a terminal state, oldest first (through the partial index runs_in_flight)."""
        sql = f"SELECT json FROM runs WHERE pipeline = ? AND {IN_FLIGHT} ORDER BY created_at, rowid"
        return [PipelineRun.model_validate_json(row["json"]) for row in self._pool.get().execute(sql, (pipeline,))]

    def runs_since(self, pipeline: str, since: float) -> list[PipelineRun]:
        """The pipeline's runs created at or after `since`, newest first (through the index runs_by_pipeline)."""
        sql = "SELECT json FROM runs WHERE pipeline = ? AND created_at >= ? ORDER BY created_at DESC, rowid DESC"
        return [
            PipelineRun.model_validate_json(row["json"]) for row in self._pool.get().execute(sql, (pipeline, since))
        ]

    def timeline(self, run_id: str) -> list[TimelineEntry]:
        """The run's history, oldest first (in the order it was written)."""
        sql = "SELECT at, kind, message, data FROM timeline WHERE run_id = ? ORDER BY seq"
        return [
            TimelineEntry(at=row["at"], kind=row["kind"], message=row["message"], data=json.loads(row["data"]))
            for row in self._pool.get().execute(sql, (run_id,))
        ]

    def append_timeline(self, run_id: str, entry: TimelineEntry) -> None:
        """Add one line to the run's history."""
        _insert_entries(self._pool.get(), run_id, [entry])

    def get_effect(self, run_id: str, step: str) -> dict[str, Any] | None:
        """The recorded result of side effect `step` of the run, if it already happened."""
        sql = "SELECT result FROM effects WHERE run_id = ? AND step = ?"
        row = self._pool.get().execute(sql, (run_id, step)).fetchone()
        return json.loads(row["result"]) if row else None

    def put_effect(self, run_id: str, step: str, result: dict[str, Any]) -> None:
        """Record that side effect `step` happened (first write wins)."""
        self._pool.get().execute(
            "INSERT OR IGNORE INTO effects (run_id, step, result, at) VALUES (?, ?, ?, ?)",
            (run_id, step, json.dumps(result), time.time()),
        )

    def list_effects(self, step: str) -> list[dict[str, Any]]:
        """The results of side effect `step` across all runs, oldest first."""
        sql = "SELECT result FROM effects WHERE step = ? ORDER BY at, rowid"  # through effects_by_step
        return [json.loads(row["result"]) for row in self._pool.get().execute(sql, (step,))]

    def record_promotion(self, record: PromotionRecord) -> None:
        """Keep an environment's promotion or rollback (first write wins)."""
        key = (record.pipeline, record.environment, record.run_id, record.kind, record.version)
        sql = "INSERT OR IGNORE INTO promotions VALUES (?, ?, ?, ?, ?, ?, ?)"
        self._pool.get().execute(sql, (*key, record.at, record.model_dump_json()))

    def promotions(self, pipeline: str, environment: str | None = None, limit: int = 50) -> list[PromotionRecord]:
        """The pipeline's promotion records (of one environment), newest first."""
        sql, params = "SELECT json FROM promotions WHERE pipeline = ?", [pipeline]
        if environment is not None:  # an index each way (promotions_by_environment, _by_time): nothing to sort
            sql, params = f"{sql} AND environment = ?", [pipeline, environment]
        rows = self._pool.get().execute(f"{sql} ORDER BY at DESC, rowid DESC LIMIT ?", (*params, limit))
        return [PromotionRecord.model_validate_json(row["json"]) for row in rows]

    def dead_letter(self, source: str, reason: str, payload: str) -> None:
        """Keep a message that will never be processed, with the reason."""
        self._pool.get().execute(
            "INSERT INTO dead_letters (at, source, reason, payload) VALUES (?, ?, ?, ?)",
            (time.time(), source, reason, payload),
        )

    def lane_head(self, lane: str) -> str | None:
        """The run that holds the lane, if any run ever took it."""
        row = self._pool.get().execute("SELECT run_id FROM lanes WHERE lane = ?", (lane,)).fetchone()
        return str(row["run_id"]) if row else None

    def take_lane(self, lane: str, expected: str | None, run_id: str) -> bool:
        """Compare-and-set the lane's head (one statement: atomic across threads and processes)."""
        conn = self._pool.get()
        if expected is None:
            return (
                conn.execute("INSERT OR IGNORE INTO lanes (lane, run_id) VALUES (?, ?)", (lane, run_id)).rowcount == 1
            )
        sql = "UPDATE lanes SET run_id = ? WHERE lane = ? AND run_id = ?"
        return conn.execute(sql, (run_id, lane, expected)).rowcount == 1

    def list_dead_letters(self, limit: int = 100, source: str | None = None) -> list[DeadLetter]:
        """Dead letters (of one source), newest first."""
        where, args = ("", (limit,)) if source is None else ("WHERE source = ? ", (source, limit))
        sql = f"SELECT id, at, source, reason, payload FROM dead_letters {where}ORDER BY id DESC LIMIT ?"
        return [DeadLetter(**{**dict(row), "id": str(row["id"])}) for row in self._pool.get().execute(sql, args)]


def _upgrade(pool: ConnectionPool) -> None:
    """Bring a file made by an older relaunch to this schema, its rows kept (see sqlite_upgrades)."""
    with write_transaction(pool.writer()) as conn:
        if "body_dropped_at" not in columns(conn, "inbox"):  # an inbox made before retention existed
            conn.execute("ALTER TABLE inbox ADD COLUMN body_dropped_at REAL")
        if "content_key" not in columns(conn, "runs"):
            conn.execute("ALTER TABLE runs ADD COLUMN content_key TEXT")
        if table_sql(conn, "content"):  # the claims' table of old: each run's claim moves into its row
            conn.execute(
                "UPDATE runs SET content_key = (SELECT key FROM content WHERE content.run_id = runs.id)"
                " WHERE id IN (SELECT run_id FROM content)"
            )
            conn.execute("DROP TABLE content")
        conn.execute(RUNS_BY_CONTENT)
        drop_autoincrement(conn, "timeline", TIMELINE, TIMELINE_INDEXES)


class StoryFeed:
    """What `relaunch up` follows in the store it shares with the stack: what was written after a cursor, read through
    the primary keys (timeline.seq, the inbox's rowid), so each look costs what is new, not the whole history."""

    def __init__(self, store: SqliteRunStore) -> None:
        self._pool = store._pool

    def head(self) -> Cursor:
        """Where the story stands now (a follower started now shows only what comes next)."""
        conn = self._pool.get()
        delivery = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM inbox").fetchone()[0]
        entry = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM timeline").fetchone()[0]
        return Cursor(delivery=int(delivery), entry=int(entry))

    def after(self, cursor: Cursor, limit: int = 500) -> tuple[list[DeliveryRow], list[EntryRow]]:
        """Deliveries and timeline entries written after `cursor`, oldest first, at most `limit` of each."""
        conn = self._pool.get()
        sql = "SELECT rowid AS seq, * FROM inbox WHERE rowid > ? ORDER BY rowid LIMIT ?"
        deliveries = [DeliveryRow(row["seq"], _delivery(row)) for row in conn.execute(sql, (cursor.delivery, limit))]
        sql = (
            "SELECT t.seq, t.run_id, t.at, t.kind, t.message, t.data, COALESCE(r.pipeline, '') AS pipeline"
            " FROM timeline t LEFT JOIN runs r ON r.id = t.run_id WHERE t.seq > ? ORDER BY t.seq LIMIT ?"
        )
        entries = [
            EntryRow(row["seq"], row["run_id"], row["pipeline"], _entry(row))
            for row in conn.execute(sql, (cursor.entry, limit))
        ]
        return deliveries, entries


def _entry(row: sqlite3.Row) -> TimelineEntry:
    return TimelineEntry(at=row["at"], kind=row["kind"], message=row["message"], data=json.loads(row["data"]))


def _stale(conn: sqlite3.Connection, run: PipelineRun) -> Exception:
    """Why an optimistic update touched no row: the run moved on (ConflictError) or never existed (KeyError)."""
    row = conn.execute("SELECT version FROM runs WHERE id = ?", (run.id,)).fetchone()
    if row is None:
        return KeyError(f"run {run.id} does not exist")
    return ConflictError(f"run {run.id}: saved at version {run.version}, store has {row['version']}")
