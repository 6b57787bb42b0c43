"""The Timeline contract on every store: a run's entries come back in the order they were written."""

from __future__ import annotations

from relaunch.domain.model import TimelineEntry
from relaunch.domain.ports import RunStore
from tests.contract.builders import make_delivery, make_run


def test_timeline_is_oldest_first_in_write_order(store: RunStore) -> None:
    store.record_delivery(make_delivery("k1"), [make_run("r1")])
    store.append_timeline("r1", TimelineEntry(at=5.0, kind="note", message="one", data={"n": 1}))
    store.append_timeline("r1", TimelineEntry(at=1.0, kind="note", message="two"))  # write order, not `at`, rules
    store.append_timeline("other", TimelineEntry(kind="note", message="elsewhere"))

    entries = store.timeline("r1")

    assert [e.message for e in entries] == ["received", "one", "two"]
    assert entries[1].data == {"n": 1}
    assert [e.message for e in store.timeline("other")] == ["elsewhere"]
    assert store.timeline("nobody") == []
