"""A delivery whose body retention dropped: its row stays, and replaying it says why it cannot run (issue 17)."""

from __future__ import annotations

import time

import pytest

from relaunch.domain.model import RunState
from relaunch.triggers.errors import TriggerError
from tests.unit.test_ingest import HELLO, deliver, world


def test_replaying_a_delivery_without_its_body_says_retention_dropped_it() -> None:
    service, store, _ = world(HELLO)
    _, body = deliver(service, "push.2.json", "push")
    run = store.runs[body["runs"][0]]
    store.runs[run.id] = run.model_copy(update={"state": RunState.PROMOTED})  # finished: a replay would run it again
    assert store.drop_bodies(["github:d-1"], received_before=time.time() + 1) > 0

    with pytest.raises(TriggerError) as raised:
        service.replay("github:d-1")

    assert raised.value.field == "body"
    assert "dropped" in raised.value.message and "RELAUNCH_RETAIN_BODY_DAYS" in raised.value.message
    assert "github:d-1" in raised.value.message
