"""The Inbox contract on every store: a delivery and its runs are written together, once per key and per content."""

from __future__ import annotations

import pytest

from relaunch.domain.ports import RunStore
from tests.contract.builders import make_delivery, make_run


def test_delivery_and_runs_are_written_together(store: RunStore) -> None:
    sent = make_delivery("k1")
    assert store.record_delivery(sent, [make_run("r1"), make_run("r2", pipeline="fraud")])

    delivery = store.get_delivery("k1")
    assert delivery is not None
    assert (delivery.source, delivery.headers, delivery.run_ids) == ("github", {"X-GitHub-Event": "push"}, ["r1", "r2"])
    assert delivery == sent.model_copy(update={"run_ids": ["r1", "r2"]})
    assert store.get_run("r1") == make_run("r1")
    assert [(e.kind, e.message, e.data) for e in store.timeline("r2")] == [("state", "received", {"to": "received"})]


def test_failed_delivery_transaction_writes_nothing(store: RunStore) -> None:
    store.record_delivery(make_delivery("k1"), [make_run("r1")])

    with pytest.raises(Exception, match="UNIQUE|already exist"):  # r1 exists: the whole second delivery rolls back
        store.record_delivery(make_delivery("k2"), [make_run("r2"), make_run("r1")])

    assert store.get_delivery("k2") is None
    assert store.get_run("r2") is None
    assert store.timeline("r2") == []
    assert [e.message for e in store.timeline("r1")] == ["received"]


def test_duplicate_delivery_returns_false_and_writes_nothing(store: RunStore) -> None:
    assert store.record_delivery(make_delivery("k1"), [make_run("r1")])

    assert not store.record_delivery(make_delivery("k1"), [make_run("r-dup")])

    assert store.get_run("r-dup") is None
    assert store.timeline("r-dup") == []
    assert [d.key for d in store.list_deliveries()] == ["k1"]


def test_delivery_outcome_and_listing(store: RunStore) -> None:
    store.record_delivery(make_delivery("old").model_copy(update={"received_at": 1.0}), [])
    store.record_delivery(make_delivery("new").model_copy(update={"received_at": 2.0}), [])

    store.set_delivery_outcome("old", "ignored: branch not tracked")
    store.set_delivery_outcome("never-received", "x")  # an unknown key: nothing happens

    assert store.get_delivery("old").outcome == "ignored: branch not tracked"  # type: ignore[union-attr]
    assert store.get_delivery("never-received") is None
    assert [d.key for d in store.list_deliveries()] == ["new", "old"]
    assert [d.key for d in store.list_deliveries(limit=1)] == ["new"]


@pytest.mark.parametrize("key", ["github:72d3162e-cc78-11e3-81ab-4c9367dc0958", "pubsub:drift_alert:123", "a/b/c", "."])
def test_any_delivery_key_is_valid(store: RunStore, key: str) -> None:
    assert store.record_delivery(make_delivery(key), [make_run(f"run-{key}")])

    assert store.get_delivery(key).key == key  # type: ignore[union-attr]
    assert not store.record_delivery(make_delivery(key), [])
    assert store.get_run(f"run-{key}") is not None
    assert store.get_delivery(key + "x") is None


def test_a_run_whose_content_another_run_holds_is_not_written_and_names_the_holder(store: RunStore) -> None:
    first = make_run("r1").model_copy(update={"content_key": "churn|push|abc123"})
    same = make_run("r2").model_copy(update={"content_key": "churn|push|abc123"})
    other = make_run("r3", pipeline="fraud").model_copy(update={"content_key": "fraud|push|abc123"})
    assert store.record_delivery(make_delivery("k1"), [first]).held == {}
    recorded = store.record_delivery(make_delivery("k2"), [same, other])
    assert recorded and recorded.held == {"r2": "r1"}
    assert store.get_run("r2") is None and store.get_run("r3") is not None
    assert store.get_delivery("k2").run_ids == ["r3"]  # type: ignore[union-attr]
    twins = [make_run(f"t{i}").model_copy(update={"content_key": "churn|push|def456"}) for i in (1, 2)]
    assert store.record_delivery(make_delivery("k3"), twins).held == {"t2": "t1"}  # twins in one call: first wins


def test_deliveries_of_one_source_are_listed_behind_newer_rows_of_another(store: RunStore) -> None:
    """The store filters by source: an old delivery is found however many newer ones of other sources there are."""
    store.record_delivery(make_delivery("wandb:old").model_copy(update={"source": "wandb", "received_at": 1.0}), [])
    for i in range(12):
        store.record_delivery(make_delivery(f"github:{i}").model_copy(update={"received_at": 10.0 + i}), [])
    store.record_delivery(make_delivery("wandb:new").model_copy(update={"source": "wandb", "received_at": 30.0}), [])

    assert [d.key for d in store.list_deliveries(limit=5, source="wandb")] == ["wandb:new", "wandb:old"]
    assert [d.key for d in store.list_deliveries(limit=1, source="wandb")] == ["wandb:new"]
    assert [d.key for d in store.list_deliveries(limit=2, source="github")] == ["github:11", "github:10"]
    assert store.list_deliveries(source="drift") == []
    everything = [d.key for d in store.list_deliveries(source=None)]
    assert everything == ["wandb:new", *(f"github:{i}" for i in reversed(range(12))), "wandb:old"]
