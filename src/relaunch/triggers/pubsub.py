"""Pub/Sub messages as they reach a function: CloudEvent binary or structured mode, or a raw push envelope."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relaunch.triggers.errors import (
    Malformed,
    PayloadTooLarge,
    Unprocessable,
    check,
    decode_json_object,
    optional,
    require,
    require_text,
)

# Pub/Sub caps a message at 10 MB; base64 and the envelope add about a third.
MAX_BODY = 16 * 1024 * 1024
CLOUDEVENTS_JSON = "application/cloudevents+json"


@dataclass(frozen=True)
class PubSubMessage:
    """One Pub/Sub message, its data already base64-decoded."""

    message_id: str
    data: bytes
    attributes: dict[str, str]
    publish_time: str | None
    subscription: str | None
    ordering_key: str | None

    def json(self) -> dict[str, Any]:
        """The data as a UTF-8 JSON object; anything else is Malformed naming "message.data"."""
        return decode_json_object(self.data, field="message.data")


def parse_pubsub_push(headers: Mapping[str, str], body: bytes, *, max_body: int = MAX_BODY) -> PubSubMessage:
    """Parse an HTTP delivery of a Pub/Sub message in any of the three shapes; bad input raises a TriggerError."""
    lowered = {str(k).lower(): v for k, v in headers.items()}
    if len(body) > max_body:
        raise PayloadTooLarge(f"body is {len(body)} bytes, the limit is {max_body}")
    document = decode_json_object(body)
    if "ce-specversion" in lowered:  # binary mode: CloudEvent attributes in headers, MessagePublishedData in body
        return from_cloudevent_data(document, event_id=lowered.get("ce-id") or None)
    if _is_structured(lowered.get("content-type"), document):
        data = require(document, "data", dict)
        return from_cloudevent_data(data, event_id=optional(document, "id", str))
    return from_cloudevent_data(document)  # a push subscription's own envelope


def from_cloudevent_data(data: Mapping[str, Any], *, event_id: str | None = None) -> PubSubMessage:
    """Build a message from MessagePublishedData (`cloud_event.data`); `event_id` stands in for a missing messageId."""
    if not isinstance(data, Mapping):
        raise Unprocessable("data must be an object", field="data")
    require_text(data)  # the envelope was decoded by the caller (cloudevents): no raw bytes to skip the walk with
    message = require(data, "message", dict)
    message_id = _either(message, "messageId", "message_id") or event_id
    if not message_id:
        raise Unprocessable("message.messageId is required", field="message.messageId")
    return PubSubMessage(
        message_id=message_id,
        data=_decode_data(message.get("data")),
        attributes=_attributes(message.get("attributes")),
        publish_time=_either(message, "publishTime", "publish_time"),
        subscription=optional(data, "subscription", str),
        ordering_key=_either(message, "orderingKey", "ordering_key"),
    )


def _is_structured(content_type: str | None, document: Mapping[str, Any]) -> bool:
    media_type = (content_type or "").partition(";")[0].strip().lower()
    # Some senders post structured events as plain application/json; a CloudEvent has specversion, an envelope not.
    return media_type == CLOUDEVENTS_JSON or ("specversion" in document and "message" not in document)


def _either(message: Mapping[str, Any], camel: str, snake: str) -> str | None:
    """A string field under either spelling (push envelopes carry both); camelCase wins."""
    for key in (camel, snake):
        value = message.get(key)
        if value is not None:
            return check(value, str, f"message.{key}")
    return None


def _decode_data(value: Any) -> bytes:
    if value is None:  # a message may carry attributes only
        return b""
    text = check(value, str, "message.data")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Malformed("message.data is not valid base64", field="message.data") from exc


def _attributes(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    raw = check(value, dict, "message.attributes")
    return {str(k): check(v, str, f"message.attributes.{k}") for k, v in raw.items()}
