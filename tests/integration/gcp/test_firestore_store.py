"""FirestoreRunStore against the Firestore emulator: escaped ids, document size limits, separate clients.

The RunStore contract it shares with the fake and SQLite lives in tests/contract.
"""

from __future__ import annotations

import pytest

from relaunch.adapters.gcp.firestore_store import FirestoreRunStore, doc_id
from relaunch.domain.model import Delivery, PipelineRun, Trigger


def make_run(run_id: str) -> PipelineRun:
    trigger = Trigger(kind="push", delivery_key=f"d-{run_id}", repo="acme/churn", sha="abc123")
    return PipelineRun(id=run_id, pipeline="churn", trigger=trigger, created_at=1000.0, updated_at=1000.0)


def make_delivery(key: str) -> Delivery:
    return Delivery(key=key, source="github", headers={"X-GitHub-Event": "push"}, body='{"ref": "refs/heads/main"}')


def test_escaped_ids_are_distinct_and_legal() -> None:
    keys = ["a:b", "a%3Ab", "a/b", "a_b", "__x__", ".", "..", "_x"]
    ids = [doc_id(k) for k in keys]

    assert len(set(ids)) == len(keys)
    assert not any("/" in i or i in (".", "..") or (i.startswith("__") and i.endswith("__")) for i in ids)
    with pytest.raises(ValueError, match="run_id must not be empty"):
        doc_id("", field="run_id")


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
