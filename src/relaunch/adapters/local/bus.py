"""The embedded Pub/Sub: topics, push subscriptions and a durable SQLite queue of deliveries (see bus_dispatcher)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relaunch.adapters.local import wake
from relaunch.adapters.local.group_commit import GroupCommit
from relaunch.adapters.local.sqlite import ConnectionPool, connect, init_schema, write_transaction
from relaunch.adapters.local.sqlite_upgrades import drop_autoincrement, without_rowid

# Messages are never deleted (only their deliveries are, once acknowledged): rowids alone never repeat, and an insert
# writes no sqlite_sequence page. A delivery is found by its key only: one B-tree, WITHOUT ROWID.
MESSAGES = """CREATE TABLE IF NOT EXISTS bus_messages (
    id INTEGER PRIMARY KEY, topic TEXT NOT NULL, data TEXT NOT NULL, attributes TEXT NOT NULL,
    published_at REAL NOT NULL)"""
DELIVERIES = """CREATE TABLE IF NOT EXISTS bus_deliveries (
    message_id INTEGER NOT NULL, subscription TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL, leased_until REAL NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '', PRIMARY KEY (message_id, subscription)) WITHOUT ROWID"""
DELIVERIES_INDEXES = ["CREATE INDEX IF NOT EXISTS bus_deliveries_due ON bus_deliveries (state, next_attempt_at)"]
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS bus_subscriptions (name TEXT PRIMARY KEY, topic TEXT NOT NULL, push_url TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS bus_subscriptions_by_topic ON bus_subscriptions (topic);
{MESSAGES};
{DELIVERIES};
{";".join(DELIVERIES_INDEXES)};
"""


def init_bus(path: Path) -> None:
    """Create the bus's file, or bring one made by an older relaunch to this schema (its messages and deliveries
    kept, with their ids)."""
    init_schema(path, SCHEMA)
    conn = connect(path)
    try:
        with write_transaction(conn):
            drop_autoincrement(conn, "bus_messages", MESSAGES, [])
            without_rowid(conn, "bus_deliveries", DELIVERIES, DELIVERIES_INDEXES)
    finally:
        conn.close()


@dataclass(frozen=True)
class Push:
    """One attempt to deliver one message to one subscription."""

    message_id: str
    subscription: str
    attempt: int
    push_url: str
    topic: str
    data: dict[str, Any]
    attributes: dict[str, str]
    published_at: float


@dataclass(frozen=True)
class DeadDelivery:
    """A delivery that exhausted its attempts and will not be retried."""

    message_id: str
    subscription: str
    topic: str
    attempts: int
    last_error: str
    data: dict[str, Any]
    attributes: dict[str, str]


def fields_of(row: sqlite3.Row) -> dict[str, Any]:
    """A joined delivery row as dataclass fields: the message id as a string, JSON columns decoded."""
    fields = {key: row[key] for key in row.keys()}
    fields.update(message_id=str(row["message_id"]), data=json.loads(row["data"]))
    fields.update(attributes=json.loads(row["attributes"]))
    return fields


Message = tuple[str, str, str, float, float]  # topic, data and attributes (JSON), published_at, due_at
_INSERT_MESSAGE = "INSERT INTO bus_messages (topic, data, attributes, published_at) VALUES (?, ?, ?, ?)"


def message(
    topic: str, data: dict[str, Any], attributes: dict[str, str] | None, now: float, not_before: float | None = None
) -> Message:
    """A message as `enqueue` writes it, published `now` and first pushed from `not_before` on (default: now)."""
    due = now if not_before is None else max(now, not_before)
    return (topic, json.dumps(data), json.dumps(attributes or {}), now, due)


def enqueue(conn: sqlite3.Connection, messages: Sequence[Message]) -> list[str]:
    """Write messages with one delivery per subscription each, first pushed at their `due_at`; their ids. Inside the
    caller's write transaction, on this bus's file or on a connection it is attached to (the store's outbox).

    One insert per table: inside the transaction the new ids are consecutive, ending at the last
    insert's rowid (a lone message's insert says it; executemany does not).
    """
    rows = [message[:4] for message in messages]
    if len(rows) == 1:
        last = conn.execute(_INSERT_MESSAGE, rows[0]).lastrowid
    else:
        conn.executemany(_INSERT_MESSAGE, rows)
        last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
    assert last is not None  # an INSERT always sets it
    ids = range(last - len(messages) + 1, last + 1)
    conn.executemany(
        "INSERT INTO bus_deliveries (message_id, subscription, next_attempt_at)"
        " SELECT ?, name, ? FROM bus_subscriptions WHERE topic = ?",
        [(message_id, due_at, topic) for message_id, (topic, _, _, _, due_at) in zip(ids, messages, strict=True)],
    )
    return [str(message_id) for message_id in ids]


class SqliteBus:
    """Bus on a SQLite file: publishing needs only the path, so any process can publish."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        init_bus(self.path)
        self._pool = ConnectionPool(self.path)
        self._publish: GroupCommit[Message, str] = GroupCommit(self._pool.writer, enqueue)

    def close(self) -> None:
        """Close the connections this bus opened."""
        self._pool.close()

    def subscribe(self, name: str, topic: str, push_url: str) -> None:
        """Create or update a push subscription; pending deliveries follow its new URL."""
        self._pool.get().execute(
            "INSERT INTO bus_subscriptions (name, topic, push_url) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET topic = excluded.topic, push_url = excluded.push_url",
            (name, topic, push_url),
        )

    def publish(
        self,
        topic: str,
        data: dict[str, Any],
        attributes: dict[str, str] | None = None,
        *,
        not_before: float | None = None,
    ) -> str:
        """Durably enqueue one delivery per subscription of the topic, pushed from `not_before` on (default: now);
        returns the message id.

        Concurrent publishes of this process share one transaction (group commit); each returns once committed.
        """
        message_id = self._publish.submit(message(topic, data, attributes, time.time(), not_before))
        wake.nudge(wake.wake_path(self.path))  # committed: the dispatcher pushes it now, not at its next poll
        return message_id

    def pending_count(self) -> int:
        """Deliveries not yet acknowledged nor dead (in flight included)."""
        sql = "SELECT COUNT(*) FROM bus_deliveries WHERE state = 'pending'"
        return int(self._pool.get().execute(sql).fetchone()[0])

    def dead_deliveries(self) -> list[DeadDelivery]:
        """Deliveries that exhausted their attempts, oldest first."""
        rows = self._pool.get().execute(
            "SELECT d.message_id, d.subscription, d.attempts, d.last_error, m.topic, m.data, m.attributes"
            " FROM bus_deliveries d JOIN bus_messages m ON m.id = d.message_id"
            " WHERE d.state = 'dead' ORDER BY d.message_id, d.subscription"
        )
        return [DeadDelivery(**fields_of(row)) for row in rows]
