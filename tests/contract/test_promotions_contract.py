"""The PromotionHistory contract on every store: an environment's records, newest first, the first write winning."""

from __future__ import annotations

from relaunch.domain.environments import PromotionRecord
from relaunch.domain.ports import PromotionHistory, RunStore


def record(environment: str, version: str, at: float, **fields: object) -> PromotionRecord:
    values: dict[str, object] = {
        "pipeline": "churn",
        "environment": environment,
        "version": version,
        "run_id": f"churn-{version}",
        "sha": "abc123",
        "approved_by": "ada (relaunch approve)",
        "checks": ["served staging 60 s (40 requests, 0 errors)"],
        "at": at,
    }
    return PromotionRecord.model_validate({**values, **fields})


def test_records_come_back_newest_first_per_pipeline_and_environment(store: RunStore) -> None:
    assert isinstance(store, PromotionHistory)
    assert store.promotions("churn") == []
    kept = [
        record("staging", "v1", 100.0),
        record("production", "v1", 200.0, replaced=None),
        record("staging", "v2", 300.0, replaced="v1"),
        record("staging", "v1", 400.0, kind="rolled_back", replaced="v2", run_id="churn-v2"),
        record("staging", "v9", 500.0, pipeline="other"),
    ]
    for r in kept:
        store.record_promotion(r)
    assert store.promotions("churn") == [kept[3], kept[2], kept[1], kept[0]]  # every field round-trips
    assert store.promotions("churn", "staging") == [kept[3], kept[2], kept[0]]
    assert store.promotions("churn", "production") == [kept[1]]
    assert store.promotions("churn", "staging", limit=1) == [kept[3]]
    assert store.promotions("churn", "qa") == []
    assert store.promotions("other") == [kept[4]]


def test_the_same_promotion_recorded_again_changes_nothing(store: RunStore) -> None:
    assert isinstance(store, PromotionHistory)
    first = record("production", "v1", 100.0, approved_by="ada (relaunch approve)")
    store.record_promotion(first)
    store.record_promotion(first.model_copy(update={"at": 900.0, "approved_by": "a retry"}))  # a redelivered command
    assert store.promotions("churn") == [first]
    back = first.model_copy(update={"kind": "rolled_back", "at": 200.0})  # a rollback of it is a record of its own
    store.record_promotion(back)
    assert store.promotions("churn", "production") == [back, first]


def test_names_that_are_not_document_ids_are_kept_as_they_are(store: RunStore) -> None:
    assert isinstance(store, PromotionHistory)
    odd = record("prod", "v1/../..", 100.0, pipeline="a/b", run_id="__x__")
    store.record_promotion(odd)
    assert store.promotions("a/b", "prod") == [odd]
