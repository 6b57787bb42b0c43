"""The retention contract of the inbox on every store: an old row loses its body and keeps everything else."""

from __future__ import annotations

from relaunch.domain.ports import RunStore
from relaunch.domain.retention import StoredBody
from tests.contract.builders import make_delivery, make_run


def test_old_bodies_are_listed_with_their_sizes_and_dropped_keeping_the_row(store: RunStore) -> None:
    for key, at, body in (("old", 100.0, "é" * 10), ("older", 50.0, "x" * 7), ("young", 500.0, "y"), ("none", 1.0, "")):
        store.record_delivery(make_delivery(key).model_copy(update={"received_at": at, "body": body}), [])
    store.record_delivery(make_delivery("with-run").model_copy(update={"received_at": 60.0}), [make_run("r1")])
    store.set_delivery_outcome("old", "failed: store down")

    listed = store.stored_bodies(received_before=200.0)
    assert listed == [
        StoredBody("older", "github", 50.0, "accepted", 7),
        StoredBody("with-run", "github", 60.0, "accepted", len(make_delivery("x").body)),
        StoredBody("old", "github", 100.0, "failed: store down", 20),  # bytes of UTF-8, not characters
    ]

    assert store.drop_bodies(["older", "old", "young", "unknown"], received_before=200.0) == 27

    old = store.get_delivery("old")
    assert old is not None and old.body == "" and old.body_dropped_at is not None
    assert (old.outcome, old.source, old.headers) == ("failed: store down", "github", {"X-GitHub-Event": "push"})
    assert store.get_delivery("young").body == "y"  # type: ignore[union-attr]
    assert store.get_delivery("young").body_dropped_at is None  # type: ignore[union-attr]
    assert store.get_delivery("with-run").run_ids == ["r1"]  # type: ignore[union-attr]
    assert [b.key for b in store.stored_bodies(received_before=200.0)] == ["with-run"]
    assert store.drop_bodies(["older", "old"], received_before=200.0) == 0
    assert store.drop_bodies([], received_before=200.0) == 0
    assert [d.key for d in store.list_deliveries()] == ["young", "old", "with-run", "older", "none"]
