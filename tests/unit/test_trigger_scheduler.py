"""Cloud Scheduler tick parsing: attributes, JSON data, and Google's SchedulerJobData sample."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relaunch.triggers.errors import TriggerError
from relaunch.triggers.pubsub import PubSubMessage, parse_pubsub_push
from relaunch.triggers.scheduler import ScheduleTick, parse_schedule

SAMPLE = Path(__file__).parent.parent / "samples" / "scheduler" / "SchedulerJobData-simple.json"


def message(data: bytes | dict[str, Any] = b"", **attributes: str) -> PubSubMessage:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return PubSubMessage("m-1", raw, attributes=attributes, publish_time=None, subscription=None, ordering_key=None)


def tick(data: bytes | dict[str, Any] = b"", **attributes: str) -> ScheduleTick:
    return parse_schedule(message(data, **attributes))


def scheduler_job_data(custom: bytes | dict[str, Any]) -> dict[str, Any]:
    raw = custom if isinstance(custom, bytes) else json.dumps(custom).encode()
    return {"customData": base64.b64encode(raw).decode()}


def test_attribute_names_the_pipeline_and_free_text_data_is_ignored() -> None:
    assert tick(b"tick", pipeline="churn") == ScheduleTick(pipeline="churn", reason="scheduled retrain", job=None)
    named = tick(pipeline="churn", job="nightly-churn")
    assert named == ScheduleTick("churn", "scheduled retrain (nightly-churn)", "nightly-churn")
    assert tick(b"", pipeline="churn", reason="weekly refresh").reason == "weekly refresh"


def test_json_data_names_the_pipeline() -> None:
    assert tick({"pipeline": "churn", "reason": "nightly"}) == ScheduleTick("churn", "nightly", None)
    assert tick({"pipeline": "churn", "job": "nightly"}).reason == "scheduled retrain (nightly)"
    assert tick(b'  {"pipeline": "churn"}\n').pipeline == "churn"


def test_attribute_and_data_may_both_name_the_same_pipeline() -> None:
    assert tick({"pipeline": "churn", "reason": "from data"}, pipeline="churn").reason == "from data"
    assert tick({"reason": "from data"}, pipeline="churn", reason="from attribute").reason == "from attribute"


def test_googles_scheduler_job_data_sample() -> None:
    sample = json.loads(SAMPLE.read_text())
    assert base64.b64decode(sample["customData"]) == b"my base64 data"  # free text: the pipeline must be an attribute
    assert tick(sample, pipeline="churn").pipeline == "churn"
    with pytest.raises(TriggerError) as raised:
        tick(sample)
    assert (raised.value.status, raised.value.field) == (422, "pipeline")


def test_scheduler_job_data_carrying_json() -> None:
    assert tick(scheduler_job_data({"pipeline": "fraud", "job": "hourly"})) == ScheduleTick(
        "fraud", "scheduled retrain (hourly)", "hourly"
    )


def test_tick_through_a_pubsub_push() -> None:
    body = {"message": {"data": base64.b64encode(b'{"pipeline": "churn"}').decode(), "messageId": "5"}}
    assert parse_schedule(parse_pubsub_push({}, json.dumps(body).encode())).pipeline == "churn"


BAD: dict[str, tuple[PubSubMessage, int, str | None]] = {
    "nothing": (message(), 422, "pipeline"),
    "free text only": (message(b"retrain please"), 422, "pipeline"),
    "empty attribute": (message(b"", pipeline=" "), 422, "pipeline"),
    "JSON without pipeline": (message({"reason": "x"}), 422, "pipeline"),
    "pipeline a number": (message({"pipeline": 7}), 422, "pipeline"),
    "pipeline upper case": (message(pipeline="Churn"), 422, "pipeline"),
    "pipeline a path": (message({"pipeline": "../churn"}), 422, "pipeline"),
    "pipeline too long": (message(pipeline="a" * 64), 422, "pipeline"),
    "attribute and data disagree": (message({"pipeline": "fraud"}, pipeline="churn"), 422, "pipeline"),
    "reason a list": (message({"pipeline": "churn", "reason": ["x"]}), 422, "reason"),
    "reason too long": (message(pipeline="churn", reason="r" * 301), 422, "reason"),
    "job an object": (message({"pipeline": "churn", "job": {}}), 422, "job"),
    "truncated JSON": (message(b'{"pipeline": "ch'), 400, "message.data"),
    "JSON not UTF-8": (message(b'{"pipeline": "\xff"}'), 400, "message.data"),
    "customData bad base64": (message({"customData": "not base64!"}), 400, "message.data.customData"),
    "customData a number": (message({"customData": 5}), 422, "message.data.customData"),
    "customData broken JSON": (message(scheduler_job_data(b"{nope")), 400, "message.data.customData"),
    "customData without pipeline": (message(scheduler_job_data({"reason": "x"})), 422, "pipeline"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_maps_to_its_status(case: str) -> None:
    msg, status, field = BAD[case]
    with pytest.raises(TriggerError) as raised:
        parse_schedule(msg)
    assert (raised.value.status, raised.value.field) == (status, field), raised.value


# --- fuzzing: nothing but TriggerError escapes --------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
attributes = st.dictionaries(st.sampled_from(["pipeline", "reason", "job", "x"]), st.text(max_size=70), max_size=4)


def parse_or_error(msg: PubSubMessage) -> None:
    try:
        parse_schedule(msg)
    except TriggerError as exc:
        assert 400 <= exc.status < 500


@given(data=st.binary(max_size=128), attrs=attributes)
def test_fuzz_bytes_and_attributes(data: bytes, attrs: dict[str, str]) -> None:
    parse_or_error(message(data, **attrs))


FIELDS = st.sampled_from(["pipeline", "reason", "job", "customData"])


@given(fields=st.dictionaries(FIELDS, json_values), attrs=attributes)
def test_fuzz_json_fields(fields: dict[str, Any], attrs: dict[str, str]) -> None:
    parse_or_error(message(fields, **attrs))
    parse_or_error(message(scheduler_job_data(fields), **attrs))
