"""The inbox's write path on SQLite: a delivery's row with its new runs, each with its first timeline entry and its
content claim (the run's unique content_key), in one group-committed transaction; with an outbox, each written run's
start_run command as well.

Why it is shaped so (a webhook waits on every line of it):
- Rows are serialised by the calling thread before it queues, so the transaction holds the write lock only for SQL.
- A fixed handful of statements per batch, whatever its size: each one hands the GIL to another thread and waits to
  get it back, and under concurrent webhooks that wait, not SQLite, is what a statement costs (the convoy).
- With an outbox, the local bus's file is attached to this writer and the start_run commands go into it in the same
  transaction: one commit per delivery instead of two, and no second round through group commit. In WAL mode the
  two files commit one after the other, the store first: a process killed between the two leaves a run in
  `received` with no command, which the reconcile tick starts (as when a publish after the write was lost), and
  never a command for a run that does not exist.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relaunch.adapters.content import split_held
from relaunch.adapters.local import wake
from relaunch.adapters.local.bus import Message, SqliteBus, enqueue, init_bus, message
from relaunch.adapters.local.group_commit import GroupCommit
from relaunch.domain.commands import StartRun
from relaunch.domain.model import Delivery, PipelineRun, TimelineEntry
from relaunch.domain.ports import Recorded

INSERT_RUN = (
    "INSERT INTO runs (id, pipeline, state, version, created_at, updated_at, json, content_key)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_ENTRY = "INSERT INTO timeline (run_id, at, kind, message, data) VALUES (?, ?, ?, ?, ?)"
INSERT_DELIVERY = (
    "INSERT INTO inbox (key, source, received_at, headers, body, outcome, run_ids) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
OUTBOX_SCHEMA = "bus"  # the name the bus's file is attached under


def run_row(run: PipelineRun) -> tuple[Any, ...]:
    json_ = run.model_dump_json()
    return (run.id, run.pipeline, run.state.value, run.version, run.created_at, run.updated_at, json_, run.content_key)


def entry_row(run_id: str, entry: TimelineEntry) -> tuple[Any, ...]:
    return (run_id, entry.at, entry.kind, entry.message, json.dumps(entry.data))


def received(run: PipelineRun) -> TimelineEntry:
    """The first entry of every run's timeline."""
    return TimelineEntry(kind="state", message="received", data={"to": run.state.value})


@dataclass(frozen=True)
class Outbox:
    """Where the store publishes the start_run command of each run it writes: the local bus's file, and the topic
    the orchestrator is subscribed to."""

    bus: Path
    topic: str


def outbox_for(adapter: str, bus: object | None, path: Path, topic: str) -> Outbox | None:
    """The embedded store's outbox: the local bus at `path` when it is the app's bus (`bus`: the one built or given
    so far, if any); None for Pub/Sub or another bus (a test's fake), which the caller publishes to itself."""
    if adapter == "pubsub" or not (bus is None or isinstance(bus, SqliteBus) and bus.path == path):
        return None
    return Outbox(path, topic)


@dataclass(frozen=True)
class _Ready:
    """One delivery with its runs, serialised: what the transaction writes for it, once it is known to be new."""

    delivery: Delivery
    runs: Sequence[PipelineRun]
    row: tuple[Any, ...]  # the inbox row without its run ids (known once the runs held by others are)
    run_rows: dict[str, tuple[Any, ...]]
    entries: dict[str, tuple[Any, ...]]
    starts: dict[str, Message]


class InboxWriter:
    """Writes deliveries with their runs (and, with an outbox, their start commands) through one group commit."""

    def __init__(self, writer: Callable[[], sqlite3.Connection], outbox: Outbox | None = None) -> None:
        """`writer`: the write connection; with an outbox, one with the bus's file attached as `OUTBOX_SCHEMA`."""
        self._topic = outbox.topic if outbox is not None else None
        self._bus = outbox.bus if outbox is not None else None
        if outbox is not None:
            init_bus(outbox.bus)
        self._commit: GroupCommit[_Ready, Recorded] = GroupCommit(writer, self._apply)

    def record(self, delivery: Delivery, runs: Sequence[PipelineRun]) -> Recorded:
        """See RunStore.record_delivery; `started` when the runs' start commands were committed with them."""
        recorded = self._commit.submit(self._ready(delivery, runs))
        if recorded.started and self._bus is not None:
            wake.nudge(wake.wake_path(self._bus))  # committed: the dispatcher pushes them now, not at its next poll
        return recorded

    def _ready(self, delivery: Delivery, runs: Sequence[PipelineRun]) -> _Ready:
        row = (delivery.key, delivery.source, delivery.received_at, json.dumps(delivery.headers), delivery.body)
        now, topic = time.time(), self._topic
        return _Ready(
            delivery,
            runs,
            (*row, delivery.outcome),
            {run.id: run_row(run) for run in runs},
            {run.id: entry_row(run.id, received(run)) for run in runs},
            {} if topic is None else {run.id: message(topic, _start(run.id), {"run_id": run.id}, now) for run in runs},
        )

    def _apply(self, conn: sqlite3.Connection, batch: Sequence[_Ready]) -> list[Recorded]:
        """Write the batch: the keys and contents it would claim are read in one query, then one insert per table."""
        known, holders = _claimed(conn, batch)
        results, rows, runs, entries, starts = [], [], [], [], []
        for ready in batch:
            if ready.delivery.key in known:
                results.append(Recorded(False))
                continue
            known.add(ready.delivery.key)  # the same key twice in one batch: the first one wins
            held, fresh = split_held(ready.runs, holders)  # updates holders: a later delivery of the batch sees these
            results.append(Recorded(True, held, started=self._topic is not None))
            run_ids = list(dict.fromkeys([*ready.delivery.run_ids, *(run.id for run in fresh)]))
            rows.append((*ready.row, json.dumps(run_ids)))
            runs += [ready.run_rows[run.id] for run in fresh]
            entries += [ready.entries[run.id] for run in fresh]
            starts += [ready.starts[run.id] for run in fresh if run.id in ready.starts]
        for sql, values in ((INSERT_DELIVERY, rows), (INSERT_RUN, runs), (INSERT_ENTRY, entries)):
            if values:
                conn.executemany(sql, values)
        if starts:
            enqueue(conn, starts)
        return results


def _claimed(conn: sqlite3.Connection, batch: Sequence[_Ready]) -> tuple[set[str], dict[str, str]]:
    """The batch's delivery keys already in the inbox, and its content keys already held (-> the holding run)."""
    keys = [ready.delivery.key for ready in batch]
    contents = [run.content_key for ready in batch for run in ready.runs if run.content_key]
    sql = f"SELECT key, NULL FROM inbox WHERE key IN ({marks(keys)})"
    if contents:
        sql += f" UNION ALL SELECT content_key, id FROM runs WHERE content_key IN ({marks(contents)})"
    known: set[str] = set()
    holders: dict[str, str] = {}
    for key, run_id in conn.execute(sql, [*keys, *contents]):
        if run_id is None:
            known.add(key)
        else:
            holders[key] = run_id
    return known, holders


def marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


def _start(run_id: str) -> dict[str, Any]:
    return StartRun(run_id=run_id).model_dump()
