"""Pub/Sub message parsing in all three delivery shapes, against Google's published samples."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relaunch.triggers.errors import Malformed, TriggerError
from relaunch.triggers.pubsub import PubSubMessage, from_cloudevent_data, parse_pubsub_push

SAMPLES = Path(__file__).parent.parent / "samples"
PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
CLOUDEVENTS = "application/cloudevents+json"
SOURCE = "//pubsub.googleapis.com/projects/my-project/topics/my-topic"
EXPECTED = {
    "MessagePublishedData-binary.json": (b"\x01\x02\x03\x04", {}, None),
    "MessagePublishedData-text.json": (b"test message 3", {"attr1": "attr1-value"}, None),
    "MessagePublishedData-complex.json": (b"test message 3", {"attr1": "attr1-value"}, "ordering-key"),
}


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text())


def binary_mode(data: dict[str, Any], event_id: str = "event-1") -> tuple[dict[str, str], bytes]:
    headers = {"Ce-Specversion": "1.0", "Ce-Id": event_id, "Ce-Type": PUBLISHED, "Ce-Source": SOURCE}
    return {**headers, "Content-Type": "application/json"}, json.dumps(data).encode()


def structured_mode(data: dict[str, Any], content_type: str = CLOUDEVENTS) -> tuple[dict[str, str], bytes]:
    event = {"specversion": "1.0", "id": "event-1", "type": PUBLISHED, "source": SOURCE, "data": data}
    return {"Content-Type": content_type}, json.dumps(event).encode()


def raw_envelope(data: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    return {"content-type": "application/json"}, json.dumps(data).encode()


def envelope(payload: bytes, **message: Any) -> dict[str, Any]:
    """A push envelope as Pub/Sub sends it, both spellings included."""
    body = {"data": base64.b64encode(payload).decode(), "messageId": "42", "message_id": "42"}
    body.update(publishTime="2024-05-01T10:00:00Z", publish_time="2024-05-01T10:00:00Z", **message)
    return {"message": body, "subscription": "projects/p/subscriptions/relaunch-push"}


SHAPES = {"binary": binary_mode, "structured": structured_mode, "raw": raw_envelope}


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("name", list(EXPECTED))
def test_every_sample_parses_in_every_shape(name: str, shape: str) -> None:
    data = sample(f"pubsub/{name}")
    message = parse_pubsub_push(*SHAPES[shape](data))
    payload, attributes, ordering_key = EXPECTED[name]
    assert message == PubSubMessage(
        message_id="message-id",
        data=payload,
        attributes=attributes,
        publish_time="2021-02-05T04:06:14.109Z",
        subscription=data["subscription"],
        ordering_key=ordering_key,
    )
    assert from_cloudevent_data(data, event_id="ignored-when-messageId-is-present") == message


def test_structured_mode_sent_as_plain_json_is_recognised() -> None:
    message = parse_pubsub_push(*structured_mode(sample("pubsub/MessagePublishedData-text.json"), "application/json"))
    assert message.attributes == {"attr1": "attr1-value"}


def test_snake_case_duplicates_and_snake_case_only() -> None:
    both = envelope(b"{}")
    snake_only = {"message": {"data": "e30=", "message_id": "7", "publish_time": "t", "ordering_key": "k"}}
    assert parse_pubsub_push(*raw_envelope(both)).message_id == "42"
    message = parse_pubsub_push(*raw_envelope(snake_only))
    assert (message.message_id, message.publish_time, message.ordering_key) == ("7", "t", "k")
    assert message.subscription is None


def test_event_id_stands_in_for_a_missing_message_id() -> None:
    data = {"message": {"data": "e30="}}
    assert parse_pubsub_push(*binary_mode(data, event_id="ce-9")).message_id == "ce-9"
    assert from_cloudevent_data(data, event_id="ce-9").message_id == "ce-9"
    with pytest.raises(TriggerError) as raised:
        from_cloudevent_data(data)
    assert (raised.value.status, raised.value.field) == (422, "message.messageId")


def test_attributes_only_message_has_empty_data() -> None:
    message = from_cloudevent_data({"message": {"messageId": "1", "attributes": {"kind": "tick"}}})
    assert (message.data, message.attributes) == (b"", {"kind": "tick"})


def test_json_data_from_real_cloud_build_and_monitoring_payloads() -> None:
    build = (SAMPLES / "cloudbuild/build.SUCCESS.json").read_bytes()
    message = parse_pubsub_push(*raw_envelope(envelope(build, attributes={"buildId": "BUILD_ID", "status": "SUCCESS"})))
    assert message.attributes["status"] == "SUCCESS" and message.json()["id"] == "BUILD_ID"
    incident = (SAMPLES / "monitoring/incident.closed.json").read_bytes()
    assert parse_pubsub_push(*binary_mode(envelope(incident))).json()["incident"]["state"] == "closed"


def test_scheduler_payload_that_is_not_json() -> None:
    custom = base64.b64decode(sample("scheduler/SchedulerJobData-simple.json")["customData"])
    message = parse_pubsub_push(*raw_envelope(envelope(custom)))
    assert message.data == b"my base64 data"
    with pytest.raises(Malformed) as raised:
        message.json()
    assert (raised.value.status, raised.value.field) == (400, "message.data")


@pytest.mark.parametrize("payload", [b"\x01\x02\x03\x04", b"[1]", b'{"a": 1', "{}".encode("utf-16")])
def test_json_refuses_data_that_is_not_a_utf8_json_object(payload: bytes) -> None:
    with pytest.raises(Malformed):
        from_cloudevent_data(envelope(payload)).json()


def with_message(**fields: Any) -> dict[str, Any]:
    data = sample("pubsub/MessagePublishedData-complex.json")
    data["message"].update(fields)
    return data


BAD = {
    "bad base64": (raw_envelope(with_message(data="not base64!")), 400, "message.data"),
    "non-ASCII base64": (raw_envelope(with_message(data="dGVzdé==")), 400, "message.data"),
    "bad padding": (raw_envelope(with_message(data="AQIDBA=")), 400, "message.data"),
    "data a number": (raw_envelope(with_message(data=5)), 422, "message.data"),
    "attribute not a string": (raw_envelope(with_message(attributes={"attr1": 1})), 422, "message.attributes.attr1"),
    "attributes a list": (raw_envelope(with_message(attributes=[])), 422, "message.attributes"),
    "messageId a number": (raw_envelope(with_message(messageId=1)), 422, "message.messageId"),
    "publish_time a list": (raw_envelope(with_message(publishTime=None, publish_time=[])), 422, "message.publish_time"),
    "no message": (raw_envelope({"subscription": "s"}), 422, "message"),
    "message a string": (raw_envelope({"message": "hi"}), 422, "message"),
    "subscription a number": (raw_envelope({**with_message(), "subscription": 3}), 422, "subscription"),
    "structured without data": (({"content-type": CLOUDEVENTS}, b'{"specversion": "1.0"}'), 422, "data"),
    "not JSON": (({}, b"hello"), 400, None),
    "not UTF-8": (({}, b'{"message": "\xff"}'), 400, None),
    "JSON array": (({}, b"[]"), 400, None),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_maps_to_its_status(case: str) -> None:
    (headers, body), status, field = BAD[case]
    with pytest.raises(TriggerError) as raised:
        parse_pubsub_push(headers, body)
    assert (raised.value.status, raised.value.field) == (status, field)


def test_body_over_the_limit() -> None:
    with pytest.raises(TriggerError) as raised:
        parse_pubsub_push({}, b" " * 101, max_body=100)
    assert raised.value.status == 413


def test_from_cloudevent_data_refuses_what_is_not_an_object() -> None:
    with pytest.raises(TriggerError) as raised:
        from_cloudevent_data(b"raw bytes")  # type: ignore[arg-type]
    assert raised.value.status == 422


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=3),
    max_leaves=10,
)
ce_headers = st.dictionaries(st.sampled_from(["ce-specversion", "ce-id", "Content-Type", "x"]), st.text(max_size=30))


@given(headers=ce_headers, body=st.binary(max_size=256))
def test_fuzz_bytes(headers: dict[str, str], body: bytes) -> None:
    try:
        parse_pubsub_push(headers, body)
    except TriggerError:
        pass


@given(headers=ce_headers, message=st.dictionaries(st.sampled_from(list(with_message())), json_values) | json_values)
def test_fuzz_shapes(headers: dict[str, str], message: Any) -> None:
    for document in ({"message": message}, {"specversion": "1.0", "data": {"message": message}}, message):
        try:
            parse_pubsub_push(headers, json.dumps(document).encode()).json()
        except TriggerError:
            pass


MESSAGE_FIELDS = ["messageId", "message_id", "data", "attributes", "publishTime", "publish_time", "orderingKey"]


@given(message=st.dictionaries(st.sampled_from(MESSAGE_FIELDS), json_values))
def test_fuzz_message_fields(message: dict[str, Any]) -> None:
    try:
        from_cloudevent_data({"message": message}, event_id="e").json()
    except TriggerError:
        pass
