"""Runs are listed a page at a time on every store: a page ends where the next one starts (`before` = its last run)."""

from __future__ import annotations

import pytest

from relaunch.domain.ports import RunStore
from tests.contract.builders import make_delivery, make_run


def _pages(store: RunStore, pipeline: str | None, size: int) -> list[list[str]]:
    pages, before = [], None
    while page := store.list_runs(pipeline=pipeline, limit=size, before=before):
        pages.append([run.id for run in page])
        before = page[-1].id
    return pages


def test_pages_follow_each_other_without_gap_or_repeat(store: RunStore) -> None:
    runs = [make_run(f"r{i}", "churn" if i % 3 else "fraud", float(i)) for i in range(1, 8)]
    store.record_delivery(make_delivery("k1"), runs)

    assert _pages(store, None, 3) == [["r7", "r6", "r5"], ["r4", "r3", "r2"], ["r1"]]
    assert _pages(store, "churn", 2) == [["r7", "r5"], ["r4", "r2"], ["r1"]]
    assert [r.id for r in store.list_runs(pipeline="fraud", before="r5")] == ["r3"]  # a cursor of another pipeline


def test_runs_created_at_the_same_time_are_each_listed_once(store: RunStore) -> None:
    runs = [make_run(f"same-{i}", "churn", 5.0) for i in range(5)]
    store.record_delivery(make_delivery("k1"), runs)

    pages = _pages(store, "churn", 2)

    assert [len(page) for page in pages] == [2, 2, 1]
    assert sorted(run_id for page in pages for run_id in page) == [f"same-{i}" for i in range(5)]


def test_an_unknown_cursor_is_refused_not_read_as_the_start(store: RunStore) -> None:
    store.record_delivery(make_delivery("k1"), [make_run("r1")])

    with pytest.raises(KeyError, match="no run"):
        store.list_runs(before="ghost")
