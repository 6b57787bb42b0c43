"""What `relaunch up` follows in the SQLite store: deliveries and timeline entries after a cursor, in writing order."""

from __future__ import annotations

import time
from pathlib import Path

from relaunch.adapters.local.sqlite_store import SqliteRunStore, StoryFeed
from relaunch.domain.model import PipelineRun, RunState, TimelineEntry
from relaunch.domain.states import transition
from relaunch.domain.story import Cursor, news
from tests.contract.builders import make_delivery, make_run


def test_the_feed_starts_at_the_head_and_returns_only_what_was_written_after(tmp_path: Path) -> None:
    store = SqliteRunStore(tmp_path / "relaunch.db")
    store.record_delivery(make_delivery("before"), [make_run("r-0", "churn")])
    feed = StoryFeed(store)
    head = feed.head()
    assert head != Cursor() and feed.after(head) == ([], [])
    run = make_run("r-1", "digits")
    store.record_delivery(make_delivery("k-1"), [run])
    saved: PipelineRun = store.get_run("r-1")  # type: ignore[assignment]
    moved, entry = transition(saved, RunState.BUILDING, now=time.time() + 1)
    store.save_run(moved, [entry, TimelineEntry(kind="note", message="n")])
    deliveries, entries = feed.after(head)
    assert [row.delivery.key for row in deliveries] == ["k-1"]
    assert [(row.run_id, row.pipeline, row.entry.kind) for row in entries] == [
        ("r-1", "digits", "state"),
        ("r-1", "digits", "state"),
        ("r-1", "digits", "note"),
    ]
    lines, cursor = news(head, deliveries, entries, clock=lambda at: "t")
    assert [line.split("  ")[1:4] for line in lines[1:]] == [
        ["r-1", "digits", "received"],
        ["r-1", "digits", "building"],
    ]
    assert feed.after(cursor) == ([], []) and feed.head() == cursor


def test_the_feed_reads_at_most_limit_rows_of_each_and_the_rest_on_the_next_look(tmp_path: Path) -> None:
    store = SqliteRunStore(tmp_path / "relaunch.db")
    for n in range(5):
        store.record_delivery(make_delivery(f"k-{n}"), [])
    feed = StoryFeed(store)
    first, _ = feed.after(Cursor(), limit=3)
    rest, _ = feed.after(Cursor(delivery=first[-1].seq), limit=3)
    assert [row.delivery.key for row in first + rest] == [f"k-{n}" for n in range(5)]
