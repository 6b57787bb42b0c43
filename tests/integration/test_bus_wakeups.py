"""A publish wakes the bus dispatcher at once, from any process: its poll is the safety net, not the latency.

Each command of a run (start, job finished, gate, rollout) crosses the bus; at the dispatcher's 20 ms poll each hop
waited 10 ms on average. Here the poll is 5 s, so only a wake-up can deliver within a second.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from relaunch.adapters.local.bus import SqliteBus
from relaunch.adapters.local.bus_dispatcher import BusDispatcher
from relaunch.adapters.local.sqlite_inbox import Outbox
from relaunch.adapters.local.sqlite_store import SqliteRunStore
from tests.integration.test_sqlite_store import make_delivery, make_run

if TYPE_CHECKING:
    from conftest import Subscriber

TOPIC = "relaunch-commands"
POLL_S = 5.0


def idle_dispatcher(db: Path) -> BusDispatcher:
    """A dispatcher started and gone to sleep on its (long) poll."""
    dispatcher = BusDispatcher(db, poll_interval=POLL_S, min_backoff=0.01)
    dispatcher.start()
    time.sleep(0.3)
    return dispatcher


def test_a_publish_from_another_process_is_pushed_within_a_second(tmp_path: Path, subscriber: Subscriber) -> None:
    db = tmp_path / "bus.db"
    bus = SqliteBus(db)
    bus.subscribe("orchestrator", TOPIC, subscriber.url + "/orchestrator")
    dispatcher = idle_dispatcher(db)
    try:
        code = f"from relaunch.adapters.local.bus import SqliteBus; SqliteBus({str(db)!r}).publish({TOPIC!r}, {{}})"
        subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
        published = time.monotonic()
        subscriber.wait_for(1, timeout=POLL_S + 2)
        assert time.monotonic() - published < 1.0, "pushed at the next poll, not on the publish's wake-up"
    finally:
        dispatcher.stop()
        bus.close()


def test_a_run_recorded_with_its_start_command_is_pushed_within_a_second(
    tmp_path: Path, subscriber: Subscriber
) -> None:
    """The webhook's path: the inbox row, the run and its start_run commit together (the store's outbox)."""
    db = tmp_path / "bus.db"
    bus = SqliteBus(db)
    bus.subscribe("orchestrator", TOPIC, subscriber.url + "/orchestrator")
    store = SqliteRunStore(tmp_path / "relaunch.db", Outbox(db, TOPIC))
    dispatcher = idle_dispatcher(db)
    try:
        assert store.record_delivery(make_delivery("k-1"), [make_run("r-1")]).started
        recorded = time.monotonic()
        [request] = subscriber.wait_for(1, timeout=POLL_S + 2)
        assert time.monotonic() - recorded < 1.0, "pushed at the next poll, not on the commit's wake-up"
        assert request.json()["message"]["attributes"] == {"run_id": "r-1"}
    finally:
        dispatcher.stop()
        store.close()
        bus.close()
