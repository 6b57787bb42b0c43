"""PubSubBus against the Pub/Sub emulator: publish and pull, push delivery of commands, redelivery, admin calls."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from google.cloud.pubsub_v1 import SubscriberClient

from relaunch.adapters.gcp.pubsub_bus import PubSubBus
from relaunch.adapters.local.stack import free_port
from relaunch.domain.ports import TransientError
from relaunch.triggers.pubsub import parse_pubsub_push

if TYPE_CHECKING:
    from tests.integration.conftest import Subscriber

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
TOPIC = "relaunch-commands"


@pytest.fixture
def subscriber_client(bus: PubSubBus) -> Any:
    client = SubscriberClient()  # the fixture `bus` has pointed the SDK at the emulator
    yield client
    client.close()


def pull_one(client: Any, subscription: str) -> Any:
    """Pull until one message arrives (the emulator may answer an early pull empty), and acknowledge it."""
    for _ in range(20):
        response = client.pull(request={"subscription": subscription, "max_messages": 1}, timeout=5)
        if response.received_messages:
            [received] = response.received_messages
            client.acknowledge(request={"subscription": subscription, "ack_ids": [received.ack_id]})
            return received.message
    pytest.fail(f"nothing to pull from {subscription}")


def test_publish_then_pull_returns_the_same_data_and_attributes(bus: PubSubBus, subscriber_client: Any) -> None:
    incident = json.loads((SAMPLES / "monitoring" / "incident.closed.json").read_text())
    topic = bus.ensure_topic("drift-alerts")
    subscription = subscriber_client.subscription_path(bus.project, "drift-pull")
    subscriber_client.create_subscription(request={"name": subscription, "topic": topic})

    message_id = bus.publish("drift-alerts", incident, {"origin": "monitoring", "pipeline": "churn"})

    message = pull_one(subscriber_client, subscription)
    assert message.message_id == message_id
    assert json.loads(message.data) == incident
    assert dict(message.attributes) == {"origin": "monitoring", "pipeline": "churn"}


def test_push_delivers_the_envelope_the_trigger_parser_reads(bus: PubSubBus, subscriber: Subscriber) -> None:
    bus.ensure_topic(TOPIC)
    path = bus.ensure_push_subscription("orchestrator", TOPIC, subscriber.url + "/orchestrator")

    message_id = bus.publish(TOPIC, {"type": "start_run", "run_id": "r1"}, {"origin": "github"})

    [request] = subscriber.wait_for(1, timeout=10)
    assert request.path == "/orchestrator"
    assert request.headers["content-type"] == "application/json"
    assert not any(name.startswith("ce-") for name in request.headers)  # a push envelope, not a CloudEvent
    envelope = request.json()
    sample = json.loads((SAMPLES / "pubsub" / "MessagePublishedData-complex.json").read_text())
    assert set(envelope) == set(sample) == {"subscription", "message"}
    assert set(sample["message"]) - {"orderingKey"} <= set(envelope["message"])  # Google's documented shape
    assert envelope["subscription"] == path
    assert envelope["message"]["messageId"] == envelope["message"]["message_id"] == message_id
    assert json.loads(base64.b64decode(envelope["message"]["data"])) == {"type": "start_run", "run_id": "r1"}
    parsed = parse_pubsub_push(request.headers, request.body)
    assert (parsed.message_id, parsed.subscription, parsed.attributes) == (message_id, path, {"origin": "github"})
    assert parsed.json() == {"type": "start_run", "run_id": "r1"}


def test_a_non_2xx_answer_is_redelivered(bus: PubSubBus, subscriber: Subscriber) -> None:
    subscriber.statuses = [503, 500]  # then the default 204
    bus.ensure_topic(TOPIC)
    bus.ensure_push_subscription("orchestrator", TOPIC, subscriber.url)

    message_id = bus.publish(TOPIC, {"type": "start_run", "run_id": "r1"})

    requests = subscriber.wait_for(3, timeout=30)
    assert [parse_pubsub_push(r.headers, r.body).message_id for r in requests] == [message_id] * 3
    assert len({r.body for r in requests}) == 1  # the same message each time


def test_admin_calls_are_idempotent_and_converge_an_existing_subscription(
    bus: PubSubBus, subscriber: Subscriber
) -> None:
    assert bus.ensure_topic(TOPIC) == bus.ensure_topic(TOPIC) == f"projects/{bus.project}/topics/{TOPIC}"
    bus.ensure_topic("relaunch-dead-letters")
    first = bus.ensure_push_subscription("orchestrator", TOPIC, "http://127.0.0.1:9/gone", ack_deadline_s=20)
    admin = bus._subscriber_client()

    again = bus.ensure_push_subscription(
        "orchestrator", TOPIC, subscriber.url + "/moved", dead_letter_topic="relaunch-dead-letters", max_attempts=5
    )
    bus.publish(TOPIC, {"type": "start_run", "run_id": "r1"})

    assert first == again == f"projects/{bus.project}/subscriptions/orchestrator"
    assert subscriber.wait_for(1, timeout=10)[0].path == "/moved"
    stored = admin.get_subscription(request={"subscription": first})
    assert stored.dead_letter_policy.dead_letter_topic == f"projects/{bus.project}/topics/relaunch-dead-letters"
    assert (stored.dead_letter_policy.max_delivery_attempts, stored.ack_deadline_seconds) == (5, 60)


def test_a_subscription_is_never_silently_left_on_another_topic(bus: PubSubBus) -> None:
    bus.ensure_topic(TOPIC)
    bus.ensure_topic("other-commands")
    bus.ensure_push_subscription("orchestrator", TOPIC, "http://127.0.0.1:9/")

    with pytest.raises(ValueError, match="topic: subscription orchestrator exists on .*relaunch-commands"):
        bus.ensure_push_subscription("orchestrator", "other-commands", "http://127.0.0.1:9/")


def test_pushes_can_carry_an_oidc_token_for_authenticated_endpoints(bus: PubSubBus) -> None:
    bus.ensure_topic(TOPIC)
    account = "relaunch-pusher@relaunch-prod.iam.gserviceaccount.com"

    endpoint = "https://orchestrator.example/"  # never called: nothing is published

    path = bus.ensure_push_subscription("orchestrator", TOPIC, endpoint, oidc_service_account=account)

    stored = bus._subscriber_client().get_subscription(request={"subscription": path})
    assert stored.push_config.oidc_token.service_account_email == account


def test_publishing_to_a_missing_topic_is_transient(bus: PubSubBus) -> None:
    with pytest.raises(TransientError, match="publishing to never-created"):
        bus.publish("never-created", {"type": "start_run", "run_id": "r1"})


def test_an_unreachable_server_is_transient_within_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{free_port()}")  # nothing listens there
    bus = PubSubBus("relaunch-t-unreachable", timeout_s=1.0)

    try:
        with pytest.raises(TransientError, match="relaunch-commands"):
            bus.publish(TOPIC, {"type": "start_run", "run_id": "r1"})
    finally:
        bus.close()


@pytest.mark.parametrize(
    ("topic", "data", "attributes", "field"),
    [
        ("a/b", {}, None, "topic"),
        ("goog-topic", {}, None, "topic"),
        (TOPIC, {"when": object()}, None, "data"),
        (TOPIC, {}, {"attempt": 1}, "attributes.attempt"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    bus: PubSubBus, topic: str, data: dict[str, Any], attributes: Any, field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        bus.publish(topic, data, attributes)


def test_subscription_limits_are_checked_before_any_call(bus: PubSubBus) -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        bus.ensure_push_subscription("orchestrator", TOPIC, "http://x", dead_letter_topic="dead", max_attempts=200)
    with pytest.raises(ValueError, match="ack_deadline_s"):
        bus.ensure_push_subscription("orchestrator", TOPIC, "http://x", ack_deadline_s=5)
    with pytest.raises(ValueError, match="push_endpoint"):
        bus.ensure_push_subscription("orchestrator", TOPIC, "ftp://x")
