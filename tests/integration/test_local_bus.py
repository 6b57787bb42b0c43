"""SqliteBus + BusDispatcher against real loopback HTTP subscribers: format, retries, dead letters, durability."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cloudevents.http import from_http

from relaunch.adapters.local.bus import SqliteBus
from relaunch.adapters.local.bus_dispatcher import EVENT_TYPE, BusDispatcher
from relaunch.adapters.local.sqlite import connect

if TYPE_CHECKING:
    from conftest import Subscriber

TOPIC = "relaunch-commands"


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Poll `condition` every 10 ms; fail if it is still false after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "bus" / "bus.db"


@pytest.fixture
def bus(db: Path) -> Iterator[SqliteBus]:
    bus = SqliteBus(db)
    yield bus
    bus.close()


def dispatcher(db: Path, **options: float) -> BusDispatcher:
    options = {"min_backoff": 0.01, "max_backoff": 1.0, **options}
    return BusDispatcher(db, **options)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_message_is_pushed_as_an_eventarc_cloudevent(bus: SqliteBus, db: Path, subscriber: Subscriber) -> None:
    bus.subscribe("orchestrator", TOPIC, subscriber.url + "/orchestrator")
    with dispatcher(db):
        message_id = bus.publish(TOPIC, {"type": "start_run", "run_id": "r1"}, {"origin": "github"})
        [request] = subscriber.wait_for(1)

    assert request.path == "/orchestrator"
    headers, body = request.headers, request.json()
    assert headers["ce-id"] == message_id
    assert headers["ce-specversion"] == "1.0"
    assert headers["ce-type"] == EVENT_TYPE == "google.cloud.pubsub.topic.v1.messagePublished"
    assert headers["ce-source"] == f"//pubsub.googleapis.com/projects/local/topics/{TOPIC}"
    assert headers["content-type"] == "application/json"
    assert datetime.fromisoformat(headers["ce-time"]).tzinfo is not None
    message = body["message"]
    assert json.loads(base64.b64decode(message["data"])) == {"type": "start_run", "run_id": "r1"}
    assert message["attributes"] == {"origin": "github"}
    assert message["messageId"] == message["message_id"] == message_id
    assert message["publishTime"] == message["publish_time"] == headers["ce-time"]
    assert body["subscription"] == "projects/local/subscriptions/orchestrator"
    event = from_http(headers, request.body)  # the parser functions-framework uses for cloud_event functions
    assert (event["id"], event["type"], event.data["message"]["messageId"]) == (message_id, EVENT_TYPE, message_id)
    wait_until(lambda: bus.pending_count() == 0, what="ack")


def test_message_ids_are_unique_and_increasing(bus: SqliteBus) -> None:
    ids = [bus.publish(TOPIC, {"n": n}) for n in range(5)]

    assert [int(i) for i in ids] == sorted({int(i) for i in ids})


class RecordedBackoff:
    """The dispatcher's own backoff, recording each (attempt, delay) it chose."""

    def __init__(self, backoff: Callable[[int], float]) -> None:
        self.backoff, self.chosen = backoff, list[tuple[int, float]]()

    def __call__(self, attempt: int) -> float:
        delay = self.backoff(attempt)
        self.chosen.append((attempt, delay))
        return delay


def test_failures_are_retried_with_growing_backoff(bus: SqliteBus, db: Path, subscriber: Subscriber) -> None:
    subscriber.statuses = [500, 500, 204]
    bus.subscribe("orchestrator", TOPIC, subscriber.url)
    running = dispatcher(db, min_backoff=0.05)
    delays = RecordedBackoff(running.backoff)  # the delays the dispatcher scheduled, judged instead of wall-clock gaps
    running.backoff = delays  # type: ignore[method-assign]
    with running:
        message_id = bus.publish(TOPIC, {"run_id": "r1"})
        first, second, third = subscriber.wait_for(3)
        wait_until(lambda: bus.pending_count() == 0, what="ack after the third attempt")
        time.sleep(0.3)  # a retry after the ack would show up here

    assert len(subscriber.received) == 3
    assert {r.headers["ce-id"] for r in (first, second, third)} == {message_id}
    assert [attempt for attempt, _ in delays.chosen] == [1, 2]  # one delay per failure, none after the success
    (_, first_delay), (_, second_delay) = delays.chosen
    assert 0.05 <= first_delay <= 0.055 and 0.1 <= second_delay <= 0.11  # doubling, with at most 10% jitter
    assert bus.dead_deliveries() == []


def test_exhausted_attempts_are_dead_lettered_and_never_retried(
    bus: SqliteBus, db: Path, subscriber: Subscriber
) -> None:
    subscriber.default_status = 503
    bus.subscribe("orchestrator", TOPIC, subscriber.url)
    with dispatcher(db, max_attempts=3):
        message_id = bus.publish(TOPIC, {"run_id": "r1"}, {"k": "v"})
        wait_until(lambda: len(bus.dead_deliveries()) == 1, what="dead letter")
        time.sleep(0.2)

    [dead] = bus.dead_deliveries()
    assert (dead.message_id, dead.subscription, dead.topic, dead.attempts) == (message_id, "orchestrator", TOPIC, 3)
    assert (dead.data, dead.attributes) == ({"run_id": "r1"}, {"k": "v"})
    assert dead.last_error.startswith("HTTP 503")
    assert len(subscriber.received) == 3
    assert bus.pending_count() == 0


def test_unreachable_subscriber_is_retried_then_dead_lettered(bus: SqliteBus, db: Path) -> None:
    bus.subscribe("orchestrator", TOPIC, f"http://127.0.0.1:{free_port()}/")
    with dispatcher(db, max_attempts=2):
        bus.publish(TOPIC, {"run_id": "r1"})
        wait_until(lambda: len(bus.dead_deliveries()) == 1, what="dead letter")

    assert "ConnectionError" in bus.dead_deliveries()[0].last_error


def test_published_while_down_is_delivered_after_restart(db: Path, subscriber: Subscriber) -> None:
    publisher = SqliteBus(db)
    publisher.subscribe("orchestrator", TOPIC, subscriber.url)
    message_id = publisher.publish(TOPIC, {"run_id": "r1"})
    publisher.close()

    restarted = SqliteBus(db)
    assert restarted.pending_count() == 1
    with dispatcher(db):
        [request] = subscriber.wait_for(1)
        wait_until(lambda: restarted.pending_count() == 0, what="ack")

    assert request.headers["ce-id"] == message_id


def test_expired_lease_of_a_crashed_dispatcher_is_delivered_again(
    bus: SqliteBus, db: Path, subscriber: Subscriber
) -> None:
    bus.subscribe("orchestrator", TOPIC, subscriber.url)
    bus.publish(TOPIC, {"run_id": "r1"})
    conn = connect(db)
    conn.execute("UPDATE bus_deliveries SET leased_until = ?, attempts = 1", (time.time() + 3600,))
    with dispatcher(db):
        time.sleep(0.3)
        assert subscriber.received == []  # another dispatcher holds the lease
        conn.execute("UPDATE bus_deliveries SET leased_until = ?", (time.time() - 1,))  # ... and died
        subscriber.wait_for(1)
        wait_until(lambda: bus.pending_count() == 0, what="ack")
    conn.close()


def test_a_delivery_is_never_pushed_twice_at_once(bus: SqliteBus, db: Path, subscriber: Subscriber) -> None:
    subscriber.delay = 0.3
    bus.subscribe("orchestrator", TOPIC, subscriber.url)
    ids = {bus.publish(TOPIC, {"n": n}) for n in range(6)}
    with dispatcher(db, workers=4), dispatcher(db, workers=4):  # two dispatchers race for the same rows
        wait_until(lambda: bus.pending_count() == 0, what="all acked")
        time.sleep(0.1)

    delivered = [r.headers["ce-id"] for r in subscriber.received]
    assert sorted(delivered) == sorted(ids)  # each exactly once: no overlapping leases


def test_every_subscription_of_the_topic_gets_the_message(bus: SqliteBus, db: Path, subscriber: Subscriber) -> None:
    bus.subscribe("orchestrator", TOPIC, subscriber.url + "/a")
    bus.subscribe("audit", TOPIC, subscriber.url + "/b")
    bus.subscribe("elsewhere", "other-topic", subscriber.url + "/c")
    bus.subscribe("audit", TOPIC, subscriber.url + "/b")  # idempotent
    with dispatcher(db):
        message_id = bus.publish(TOPIC, {"run_id": "r1"})
        subscriber.wait_for(2)
        wait_until(lambda: bus.pending_count() == 0, what="both acked")

    got = sorted((r.path, r.json()["subscription"], r.headers["ce-id"]) for r in subscriber.received)
    assert got == [
        ("/a", "projects/local/subscriptions/orchestrator", message_id),
        ("/b", "projects/local/subscriptions/audit", message_id),
    ]


def test_stop_returns_promptly_even_with_a_slow_subscriber(bus: SqliteBus, db: Path, subscriber: Subscriber) -> None:
    subscriber.delay = 10.0
    bus.subscribe("orchestrator", TOPIC, subscriber.url)
    running = dispatcher(db)
    running.start()
    bus.publish(TOPIC, {"run_id": "r1"})
    subscriber.wait_for(1)

    running.stop()

    assert subscriber.active == 1  # stop did not wait for the slow push to finish: it is still in flight
    assert bus.pending_count() == 1  # not acknowledged: delivered again once its lease expires
