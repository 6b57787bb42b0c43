"""Every Firestore listing is read a page at a time (limit + start_after), never as one stream of a whole collection:
each query the SDK runs is recorded with its limit, against the emulator, with pages of 2 documents."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from google.cloud.firestore_v1.query import Query

from relaunch.adapters.gcp import firestore_pages
from relaunch.adapters.gcp.firestore_store import FirestoreRunStore
from relaunch.domain.environments import PromotionRecord
from relaunch.domain.model import Delivery, PipelineRun, RunState, TimelineEntry, Trigger

LISTINGS: dict[str, Callable[[FirestoreRunStore], list[Any]]] = {
    "list_runs": lambda s: s.list_runs("churn", limit=5),
    "active_runs": lambda s: s.active_runs("churn"),
    "runs_since": lambda s: s.runs_since("churn", 0.0),
    "timeline": lambda s: s.timeline("r0"),
    "list_effects": lambda s: s.list_effects("cost"),
    "stored_bodies": lambda s: s.stored_bodies(10.0**10),
    "list_deliveries": lambda s: s.list_deliveries(5),
    "list_dead_letters": lambda s: s.list_dead_letters(5),
    "promotions": lambda s: s.promotions("churn"),
}


promotion = {"pipeline": "churn", "environment": "prod", "run_id": "r1", "sha": "abc123"}


def make_run(i: int) -> PipelineRun:
    trigger = Trigger(kind="push", delivery_key=f"d{i}", repo="acme/churn", sha=f"{i:07x}")
    return PipelineRun(id=f"r{i}", pipeline="churn", trigger=trigger, created_at=float(i), updated_at=float(i))


@pytest.fixture
def filled(store: FirestoreRunStore) -> FirestoreRunStore:
    """Five of everything: runs in flight, timeline entries, effects, deliveries with bodies, dead letters."""
    for i in range(5):
        delivery = Delivery(key=f"k{i}", source="github", headers={}, body="{}", received_at=float(i + 1))
        store.record_delivery(delivery, [make_run(i)])
        store.put_effect(f"r{i}", "cost", {"n": i})
        store.append_timeline("r0", TimelineEntry(kind="note", message=str(i)))
        store.dead_letter("github", "bad", "x")
        store.record_promotion(PromotionRecord.model_validate(promotion | {"version": f"v{i}", "at": float(i)}))
    return store


@pytest.fixture
def queries(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    """The limit of every query run from now on (None: a query without one)."""
    seen: list[int | None] = []
    stream = Query.stream

    def recorded(self: Query, *args: Any, **kwargs: Any) -> Any:
        seen.append(self._limit)
        return stream(self, *args, **kwargs)

    monkeypatch.setattr(Query, "stream", recorded)
    monkeypatch.setattr(firestore_pages, "PAGE", 2)
    return seen


@pytest.mark.parametrize("name", LISTINGS)
def test_every_listing_query_is_bounded_and_pages_come_back_whole(
    filled: FirestoreRunStore, queries: list[int | None], name: str
) -> None:
    found = LISTINGS[name](filled)

    assert len(found) == (6 if name == "timeline" else 5)  # r0's "received" and five notes
    assert queries and None not in queries, queries


def test_a_listing_longer_than_a_page_is_read_in_pages_in_order(
    filled: FirestoreRunStore, queries: list[int | None]
) -> None:
    run = filled.get_run("r2")
    assert run is not None
    filled.save_run(run.model_copy(update={"state": RunState.PROMOTED}))
    queries.clear()

    assert [r.id for r in filled.active_runs("churn")] == ["r0", "r1", "r3", "r4"]
    assert queries == [2, 2, 2]  # 2 + 2 + an empty page
    assert [r.id for r in filled.runs_since("churn", 1.0)] == ["r4", "r3", "r2", "r1"]
