"""FirestoreRunStore against the Firestore emulator: the RunStore contract of SqliteRunStore, escaping, limits."""

from __future__ import annotations

import pytest

from relaunch.adapters.gcp.firestore_store import FirestoreRunStore, doc_id
from relaunch.domain.model import Delivery, PipelineRun, RunState, TimelineEntry, Trigger
from relaunch.domain.ports import ConflictError


def make_run(run_id: str, pipeline: str = "churn", created_at: float = 1000.0) -> PipelineRun:
    trigger = Trigger(kind="push", delivery_key=f"d-{run_id}", repo="acme/churn", sha="abc123")
    return PipelineRun(id=run_id, pipeline=pipeline, trigger=trigger, created_at=created_at, updated_at=created_at)


def make_delivery(key: str) -> Delivery:
    return Delivery(key=key, source="github", headers={"X-GitHub-Event": "push"}, body='{"ref": "refs/heads/main"}')


def test_delivery_and_runs_are_written_together(store: FirestoreRunStore) -> None:
    sent = make_delivery("k1")
    assert store.record_delivery(sent, [make_run("r1"), make_run("r2", pipeline="fraud")])

    delivery = store.get_delivery("k1")
    assert delivery is not None
    assert (delivery.source, delivery.headers, delivery.run_ids) == ("github", {"X-GitHub-Event": "push"}, ["r1", "r2"])
    assert delivery == sent.model_copy(update={"run_ids": ["r1", "r2"]})
    assert store.get_run("r1") == make_run("r1")
    assert [(e.kind, e.message, e.data) for e in store.timeline("r2")] == [("state", "received", {"to": "received"})]


def test_failed_delivery_transaction_writes_nothing(store: FirestoreRunStore) -> None:
    store.record_delivery(make_delivery("k1"), [make_run("r1")])

    with pytest.raises(ValueError, match=r"run ids already exist: \['r1'\]"):  # the whole second delivery rolls back
        store.record_delivery(make_delivery("k2"), [make_run("r2"), make_run("r1")])

    assert store.get_delivery("k2") is None
    assert store.get_run("r2") is None
    assert store.timeline("r2") == []
    assert [e.message for e in store.timeline("r1")] == ["received"]


def test_duplicate_delivery_returns_false_and_writes_nothing(store: FirestoreRunStore) -> None:
    assert store.record_delivery(make_delivery("k1"), [make_run("r1")])

    assert not store.record_delivery(make_delivery("k1"), [make_run("r-dup")])

    assert store.get_run("r-dup") is None
    assert store.timeline("r-dup") == []
    assert [d.key for d in store.list_deliveries()] == ["k1"]


def test_delivery_outcome_and_listing(store: FirestoreRunStore) -> None:
    store.record_delivery(make_delivery("old").model_copy(update={"received_at": 1.0}), [])
    store.record_delivery(make_delivery("new").model_copy(update={"received_at": 2.0}), [])

    store.set_delivery_outcome("old", "ignored: branch not tracked")
    store.set_delivery_outcome("never-received", "x")  # like SQLite's UPDATE of no row: nothing happens

    assert store.get_delivery("old").outcome == "ignored: branch not tracked"  # type: ignore[union-attr]
    assert store.get_delivery("never-received") is None
    assert [d.key for d in store.list_deliveries()] == ["new", "old"]
    assert [d.key for d in store.list_deliveries(limit=1)] == ["new"]


@pytest.mark.parametrize("key", ["github:72d3162e-cc78-11e3-81ab-4c9367dc0958", "pubsub:drift_alert:123", "a/b/c", "."])
def test_any_delivery_key_is_a_valid_document_id(store: FirestoreRunStore, key: str) -> None:
    assert store.record_delivery(make_delivery(key), [make_run(f"run-{key}")])

    assert store.get_delivery(key).key == key  # type: ignore[union-attr]
    assert not store.record_delivery(make_delivery(key), [])
    assert store.get_run(f"run-{key}") is not None
    assert store.get_delivery(key + "x") is None


def test_escaped_ids_are_distinct_and_legal() -> None:
    keys = ["a:b", "a%3Ab", "a/b", "a_b", "__x__", ".", "..", "_x"]
    ids = [doc_id(k) for k in keys]

    assert len(set(ids)) == len(keys)
    assert not any("/" in i or i in (".", "..") or (i.startswith("__") and i.endswith("__")) for i in ids)
    with pytest.raises(ValueError, match="run_id must not be empty"):
        doc_id("", field="run_id")


def test_save_run_bumps_version_and_appends_entries(store: FirestoreRunStore) -> None:
    store.record_delivery(make_delivery("k1"), [make_run("r1")])
    run = store.get_run("r1")
    assert run is not None

    notes = [TimelineEntry(kind="note", message="x"), TimelineEntry(kind="note", message="y", data={"n": [1, 2]})]

    saved = store.save_run(run.model_copy(update={"state": RunState.BUILDING}), notes)

    assert saved.version == run.version + 1
    assert store.get_run("r1") == saved
    assert [e.message for e in store.timeline("r1")] == ["received", "x", "y"]
    assert store.timeline("r1")[2] == notes[1]


def test_stale_copy_conflicts_and_changes_nothing(store: FirestoreRunStore) -> None:
    store.record_delivery(make_delivery("k1"), [make_run("r1")])
    first, second = store.get_run("r1"), store.get_run("r1")
    assert first is not None and second is not None
    store.save_run(first.model_copy(update={"state": RunState.BUILDING}))

    with pytest.raises(ConflictError, match="saved at version 0, store has 1"):
        store.save_run(second.model_copy(update={"state": RunState.FAILED}), [TimelineEntry(kind="note", message="x")])

    assert store.get_run("r1").state is RunState.BUILDING  # type: ignore[union-attr]
    assert [e.message for e in store.timeline("r1")] == ["received"]


def test_saving_an_unknown_run_is_not_a_conflict(store: FirestoreRunStore) -> None:
    with pytest.raises(KeyError):
        store.save_run(make_run("ghost"))

    assert store.get_run("ghost") is None


def test_effects_first_write_wins(store: FirestoreRunStore) -> None:
    assert store.get_effect("r1", "submit:train") is None

    store.put_effect("r1", "submit:train", {"job_id": "j1"})
    store.put_effect("r1", "submit:train", {"job_id": "j2"})

    assert store.get_effect("r1", "submit:train") == {"job_id": "j1"}
    assert store.get_effect("r1", "submit:evaluate") is None
    store.put_effect("r1:submit", "train", {"job_id": "other"})  # ids must not collide when ':' is in the parts
    assert store.get_effect("r1", "submit:train") == {"job_id": "j1"}
    assert store.get_effect("r1:submit", "train") == {"job_id": "other"}


def test_timeline_is_oldest_first_in_write_order(store: FirestoreRunStore) -> None:
    store.record_delivery(make_delivery("k1"), [make_run("r1")])
    store.append_timeline("r1", TimelineEntry(at=5.0, kind="note", message="one", data={"n": 1}))
    store.append_timeline("r1", TimelineEntry(at=1.0, kind="note", message="two"))  # write order, not `at`, rules
    store.append_timeline("other", TimelineEntry(kind="note", message="elsewhere"))

    entries = store.timeline("r1")

    assert [e.message for e in entries] == ["received", "one", "two"]
    assert entries[1].data == {"n": 1}
    assert [e.message for e in store.timeline("other")] == ["elsewhere"]


def test_list_runs_newest_first_filtered_and_limited(store: FirestoreRunStore) -> None:
    runs = [make_run("a", "churn", 1.0), make_run("b", "fraud", 2.0), make_run("c", "churn", 3.0)]
    store.record_delivery(make_delivery("k1"), runs)

    assert [r.id for r in store.list_runs()] == ["c", "b", "a"]
    assert [r.id for r in store.list_runs(pipeline="churn")] == ["c", "a"]
    assert [r.id for r in store.list_runs(limit=1)] == ["c"]
    assert store.list_runs(pipeline="nope") == []


def test_dead_letters_are_kept_newest_first(store: FirestoreRunStore) -> None:
    store.dead_letter("orchestrator", "malformed command", '{"type": "nope"}')
    store.dead_letter("drift_alert", "unknown schema", "{}")

    letters = store.list_dead_letters()

    assert [(d.source, d.reason, d.payload) for d in letters] == [
        ("drift_alert", "unknown schema", "{}"),
        ("orchestrator", "malformed command", '{"type": "nope"}'),
    ]
    assert len({d.id for d in letters}) == 2
    assert [d.source for d in store.list_dead_letters(limit=1)] == ["drift_alert"]


def test_a_payload_over_the_document_limit_is_cut_not_refused(store: FirestoreRunStore) -> None:
    huge = "é" * 1_000_000  # 2 MB of UTF-8: twice what one Firestore document may hold

    store.dead_letter("orchestrator", "too big", huge)
    store.record_delivery(make_delivery("big").model_copy(update={"body": huge}), [])

    [letter] = store.list_dead_letters()
    assert huge.startswith(letter.payload) and 0 < len(letter.payload.encode()) <= 900_000
    assert huge.startswith(store.get_delivery("big").body)  # type: ignore[union-attr]


def test_data_is_shared_by_separate_clients(store: FirestoreRunStore, project: str) -> None:
    store.record_delivery(make_delivery("k1"), [make_run("r1")])

    other = FirestoreRunStore(project)  # another function instance: its own client, same database
    try:
        assert other.get_run("r1") == make_run("r1")
        assert not other.record_delivery(make_delivery("k1"), [])
        assert FirestoreRunStore(project, prefix="elsewhere").get_run("r1") is None
    finally:
        other.close()
