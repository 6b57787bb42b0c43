"""Strings from outside must be Unicode text: a lone surrogate escape is refused with the field's dotted path."""

from __future__ import annotations

import json

import pytest

from relaunch.triggers.errors import Unprocessable, decode_json_object, printable, require_text
from relaunch.triggers.pubsub import from_cloudevent_data, parse_pubsub_push


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (rb'{"repository": {"full_name": "\ud800"}}', "repository.full_name"),
        (rb'{"commits": [{"id": "a"}, {"message": "ok \uDFFF"}]}', "commits.1.message"),
        (rb'{"a": {"\udc00key": 1}}', "a.\\udc00key"),
        (rb'{"a": ["\ude00\ud83d"]}', "a.0"),  # a pair in the wrong order is two lone surrogates
        (rb'{"a": "\ud83d"}', "a"),
    ],
)
def test_a_lone_surrogate_is_a_422_naming_its_path(raw: bytes, field: str) -> None:
    with pytest.raises(Unprocessable) as caught:
        decode_json_object(raw)
    assert caught.value.field == field and caught.value.status == 422
    assert "not valid Unicode text (a lone surrogate escape)" in caught.value.message
    caught.value.field.encode("utf-8")  # the path itself can be logged and stored


@pytest.mark.parametrize(
    "raw",
    [
        rb'{"emoji": "\ud83d\ude00"}',
        rb'{"e": "\uD83D\uDE00"}',
        rb'{"s": "\\ud800 is written out"}',
        b'{"x": "\xc3\xa9"}',
    ],
)
def test_real_text_passes(raw: bytes) -> None:
    assert decode_json_object(raw) == json.loads(raw)


def test_without_a_surrogate_escape_in_the_raw_bytes_the_walk_is_skipped() -> None:
    require_text({"a": "\ud800"}, b'{"a": 1}')  # the raw bytes are the proof: no escape, no surrogate
    with pytest.raises(Unprocessable):
        require_text({"a": "\ud800"})


def test_deep_nesting_is_walked_without_recursion() -> None:
    value: object = "\ud800"
    for _ in range(50_000):
        value = [value]
    with pytest.raises(Unprocessable) as caught:
        require_text({"deep": value}, prefix="message")
    assert caught.value.field is not None and caught.value.field.startswith("message.deep.0.0")


def test_a_pubsub_envelope_and_its_data_are_both_checked() -> None:
    envelope = {"message": {"messageId": "1", "data": "", "attributes": {"k\ud800": "v"}}}
    with pytest.raises(Unprocessable) as caught:
        from_cloudevent_data(envelope)
    assert caught.value.field == "message.attributes.k\\ud800"
    data = {"message": {"messageId": "1", "data": "eyJyZWFzb24iOiAiXHVkODAwIn0="}}  # {"reason": "\ud800"}
    with pytest.raises(Unprocessable) as caught:
        from_cloudevent_data(data).json()
    assert caught.value.field == "reason"
    body = b'{"message": {"messageId": "\\ud800"}}'
    with pytest.raises(Unprocessable) as caught:
        parse_pubsub_push({}, body)
    assert caught.value.field == "message.messageId"


def test_printable_escapes_only_what_cannot_be_encoded() -> None:
    assert printable("caf\u00e9 \ud800 \U0001f600") == "caf\u00e9 \\ud800 \U0001f600"
