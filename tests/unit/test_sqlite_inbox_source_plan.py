"""How SQLite finds one source's deliveries and dead letters: by walking the newest-first order it already keeps and
skipping other sources' rows, never by sorting (an index of its own would cost every webhook's commit a B-tree;
`relaunch inbox --source` is an operator's command: ~0.15-0.2 s for a source's one row behind 100,000 others)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from relaunch.adapters.local.sqlite_store import SqliteRunStore
from tests.contract.builders import make_delivery
from tests.unit.test_sqlite_query_plans import plans


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteRunStore]:
    store = SqliteRunStore(tmp_path / "relaunch.db")
    store.record_delivery(make_delivery("k1"), [])
    store.dead_letter("drift", "unknown schema", "{}")
    yield store
    store.close()


def test_a_sources_deliveries_walk_the_inbox_by_time_without_a_sort(store: SqliteRunStore) -> None:
    [steps] = plans(store, lambda s: s.list_deliveries(20, source="wandb")).values()
    assert steps == ["SCAN inbox USING INDEX inbox_by_received"]


def test_a_sources_dead_letters_walk_them_newest_first_without_a_sort(store: SqliteRunStore) -> None:
    [steps] = plans(store, lambda s: s.list_dead_letters(20, source="drift")).values()
    assert steps == ["SCAN dead_letters"]
