"""The local agent's job table: a SQLite file shared by the submitting process and the agent process."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from relaunch.adapters.local.sqlite import Database
from relaunch.domain.model import JobRequest

FINAL_STATES = ("succeeded", "failed", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    key TEXT NOT NULL UNIQUE,
    request TEXT NOT NULL,
    priority INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    message TEXT NOT NULL DEFAULT '',
    pid INTEGER,
    submitted_at REAL NOT NULL,
    not_before REAL,
    started_at REAL,
    finished_at REAL,
    notified INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (state, priority DESC, seq);
"""


class JobTable:
    """Rows of jobs; every state change is a conditional UPDATE so concurrent writers never clobber each other."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        self._db = Database(self.db_path, _SCHEMA)
        with self._db.transaction() as conn:  # a job table made before `not_before` existed gains the column
            columns = {row["name"] for row in conn.execute("PRAGMA table_info(jobs)")}
            if "not_before" not in columns:
                conn.execute("ALTER TABLE jobs ADD COLUMN not_before REAL")

    def insert(self, job_id: str, request: JobRequest) -> None:
        """Add a queued job unless its key is already known."""
        with self._db.connection() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO jobs (id, key, request, priority, state, submitted_at, not_before)"
                " VALUES (?, ?, ?, ?, 'queued', ?, ?)",
                (job_id, request.key, request.model_dump_json(), request.priority, time.time(), request.not_before),
            )

    def get(self, job_id: str) -> sqlite3.Row | None:
        with self._db.connection() as conn:
            row: sqlite3.Row | None = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return row

    def in_states(self, *states: str) -> list[sqlite3.Row]:
        """Rows in any of `states` (all rows if none given), in submission order."""
        wanted = states or ("queued", "running", *FINAL_STATES)
        marks = ", ".join("?" * len(wanted))
        with self._db.connection() as conn:
            return list(conn.execute(f"SELECT * FROM jobs WHERE state IN ({marks}) ORDER BY seq", wanted))

    def unnotified(self) -> list[sqlite3.Row]:
        """Finished rows whose completion has not been handed to the callback yet."""
        marks = ", ".join("?" * len(FINAL_STATES))
        with self._db.connection() as conn:
            query = f"SELECT * FROM jobs WHERE notified = 0 AND state IN ({marks}) ORDER BY seq"
            return list(conn.execute(query, FINAL_STATES))

    def claim_next(self) -> sqlite3.Row | None:
        """Mark the highest-priority, oldest queued job that may start now (its `not_before` passed) running."""
        with self._db.transaction() as conn:
            row: sqlite3.Row | None = conn.execute(
                "SELECT * FROM jobs WHERE state = 'queued' AND (not_before IS NULL OR not_before <= ?)"
                " ORDER BY priority DESC, seq LIMIT 1",
                (time.time(),),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE jobs SET state = 'running', started_at = ?, pid = NULL, message = '' WHERE id = ?",
                (time.time(), row["id"]),
            )
            return row

    def set_pid(self, job_id: str, pid: int) -> None:
        with self._db.connection() as conn:
            conn.execute("UPDATE jobs SET pid = ? WHERE id = ? AND state = 'running'", (pid, job_id))

    def finish(self, job_id: str, attempt: int, state: str, message: str) -> bool:
        """Move a running attempt to a final state; False if someone (a cancel) got there first."""
        with self._db.connection() as conn:
            cur = conn.execute(
                "UPDATE jobs SET state = ?, message = ?, finished_at = ?, pid = NULL"
                " WHERE id = ? AND state = 'running' AND attempts = ?",
                (state, message, time.time(), job_id, attempt),
            )
            return cur.rowcount == 1

    def cancel(self, job_id: str) -> sqlite3.Row:
        """Cancel a queued or running job; returns the row as it was before (KeyError if unknown)."""
        with self._db.transaction() as conn:
            row: sqlite3.Row | None = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise KeyError(job_id)
            if row["state"] in ("queued", "running"):
                conn.execute(
                    "UPDATE jobs SET state = 'cancelled', message = 'cancelled by request', finished_at = ?"
                    " WHERE id = ?",
                    (time.time(), job_id),
                )
            return row

    def mark_notified(self, job_id: str) -> None:
        with self._db.connection() as conn:
            conn.execute("UPDATE jobs SET notified = 1 WHERE id = ?", (job_id,))
