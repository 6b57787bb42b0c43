"""The local bus delivers a message published with `not_before` at that time, not before (a scheduled look at a
rollout), durably: the delay is a column of the queue, so a restarted dispatcher keeps it."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import TYPE_CHECKING

from relaunch.adapters.local.bus import SqliteBus
from relaunch.adapters.local.bus_dispatcher import BusDispatcher

if TYPE_CHECKING:
    from tests.integration.conftest import Subscriber


def test_a_delayed_message_arrives_at_its_time_and_others_pass_it(tmp_path: Path, subscriber: Subscriber) -> None:
    db = tmp_path / "bus.db"
    bus = SqliteBus(db)
    try:
        bus.subscribe("orchestrator", "relaunch-commands", subscriber.url + "/orchestrator")
        with BusDispatcher(db, poll_interval=0.02):
            due = time.time() + 1.5
            bus.publish("relaunch-commands", {"n": "later"}, not_before=due)
            bus.publish("relaunch-commands", {"n": "now"})
            [first] = subscriber.wait_for(1)
            assert (
                base64.b64decode(first.json()["message"]["data"]) == b'{"n": "now"}' and len(subscriber.received) == 1
            )
            [_, second] = subscriber.wait_for(2, timeout=10)
            arrived = time.time()
        assert arrived >= due, f"delivered {due - arrived:.2f} s early"
        assert arrived - due < 5.0  # generous under load: the dispatcher polls every 20 ms
        assert base64.b64decode(second.json()["message"]["data"]) == b'{"n": "later"}'
    finally:
        bus.close()
