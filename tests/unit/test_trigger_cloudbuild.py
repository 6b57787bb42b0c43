"""Cloud Build `cloud-builds` messages, against the published Build resource sample."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relaunch.triggers.cloudbuild import FINAL_STATUSES, RUN_ID_SUBSTITUTION, BuildEvent, parse_build
from relaunch.triggers.errors import TriggerError
from relaunch.triggers.pubsub import PubSubMessage, parse_pubsub_push

SAMPLE = Path(__file__).parent.parent / "samples" / "cloudbuild" / "build.SUCCESS.json"
DIGEST = "sha256:0c7566925d2cd9997a977887b43a9b751a83e7f14301584779f3986eb62c81c6"


def build(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(json.loads(SAMPLE.read_text()))
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def message(data: dict[str, Any] | bytes, **attributes: str) -> PubSubMessage:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return PubSubMessage("m-1", raw, attributes=attributes, publish_time=None, subscription=None, ordering_key=None)


def parse(data: dict[str, Any] | bytes, **attributes: str) -> BuildEvent:
    return parse_build(message(data, **attributes))


def test_published_success_sample() -> None:
    event = parse(build(), buildId="BUILD_ID", status="SUCCESS")
    assert event == BuildEvent(
        build_id="BUILD_ID",
        status="SUCCESS",
        run_id=None,
        images=(f"gcr.io/PROJECT_ID/quickstart-image@{DIGEST}", f"gcr.io/PROJECT_ID/quickstart-image:latest@{DIGEST}"),
        log_url="https://console.cloud.google.com/cloud-build/builds/BUILD_ID?project=25338030513",
    )
    assert event.final and event.succeeded


def test_sample_through_a_pubsub_push() -> None:
    data = base64.b64encode(SAMPLE.read_bytes()).decode()
    body = {"message": {"data": data, "messageId": "7", "attributes": {"buildId": "BUILD_ID", "status": "SUCCESS"}}}
    assert parse_build(parse_pubsub_push({}, json.dumps(body).encode())).build_id == "BUILD_ID"


def test_run_id_from_the_substitution_then_from_a_tag() -> None:
    subs = {RUN_ID_SUBSTITUTION: "digits-0a1b2c3d4e", "_SHA": "abc", "_PIPELINE": "digits"}
    event = parse(build(substitutions=subs, tags=["relaunch", "relaunch-run-other"]))
    assert (event.run_id, event.pipeline) == ("digits-0a1b2c3d4e", "digits")
    assert parse(build(tags=["relaunch", "relaunch-run-digits-99"])).run_id == "digits-99"
    assert parse(build(substitutions={RUN_ID_SUBSTITUTION: ""}, tags=["relaunch-run-x"])).run_id == "x"
    assert parse(build(tags=["relaunch-run-"])).run_id is None


@pytest.mark.parametrize("status", ["QUEUED", "WORKING", "PENDING", "STATUS_UNKNOWN"])
def test_early_statuses_are_not_final_and_tolerate_missing_parts(status: str) -> None:
    event = parse(build(status=status, results=None, logUrl=None))
    assert (event.status, event.images, event.log_url, event.final, event.succeeded) == (status, (), None, False, False)


@pytest.mark.parametrize("status", sorted(FINAL_STATUSES - {"SUCCESS"}))
def test_failed_final_statuses(status: str) -> None:
    event = parse(build(status=status, statusDetail="step 0 exited 1"))
    assert event.final and not event.succeeded and event.status_detail == "step 0 exited 1"


def test_attributes_alone_say_which_build_and_how_it_went() -> None:
    event = parse(b"", buildId="b-1", status="WORKING")
    assert (event.build_id, event.status, event.run_id, event.images) == ("b-1", "WORKING", None, ())
    assert parse(build(id=None, status=None), buildId="b-2", status="FAILURE").build_id == "b-2"


def test_images_without_a_digest_keep_their_name() -> None:
    results = {"images": [{"name": "gcr.io/p/img:tag"}, {"name": "gcr.io/p/other", "digest": ""}]}
    assert parse(build(results=results)).images == ("gcr.io/p/img:tag", "gcr.io/p/other")


BAD: dict[str, tuple[PubSubMessage, int, str | None]] = {
    "no id anywhere": (message(build(id=None)), 422, "id"),
    "id and attribute disagree": (message(build(), buildId="other"), 422, "id"),
    "id a number": (message(build(id=5)), 422, "id"),
    "absurd id": (message(build(id="i" * 201)), 422, "id"),
    "no status anywhere": (message(build(status=None)), 422, "status"),
    "status lower case": (message(build(status="success")), 422, "status"),
    "status a list": (message(build(status=["SUCCESS"])), 422, "status"),
    "substitutions a list": (message(build(substitutions=["x"])), 422, "substitutions"),
    "substitution a number": (message(build(substitutions={RUN_ID_SUBSTITUTION: 5})), 422,
                              f"substitutions.{RUN_ID_SUBSTITUTION}"),
    "absurd run id": (message(build(substitutions={RUN_ID_SUBSTITUTION: "r" * 201})), 422,
                      f"substitutions.{RUN_ID_SUBSTITUTION}"),
    "tags a string": (message(build(tags="relaunch")), 422, "tags"),
    "tag a number": (message(build(tags=[1])), 422, "tags[0]"),
    "results a list": (message(build(results=[])), 422, "results"),
    "image a string": (message(build(results={"images": ["gcr.io/p/i"]})), 422, "results.images[0]"),
    "image unnamed": (message(build(results={"images": [{"digest": DIGEST}]})), 422, "results.images[0].name"),
    "image name a number": (message(build(results={"images": [{"name": 3}]})), 422, "results.images[0].name"),
    "digest a number": (message(build(results={"images": [{"name": "n", "digest": 3}]})), 422,
                        "results.images[0].digest"),
    "logUrl a bool": (message(build(logUrl=True)), 422, "logUrl"),
    "truncated JSON": (message(SAMPLE.read_bytes()[:100]), 400, "message.data"),
    "not UTF-8": (message(b'{"id": "\xff"}'), 400, "message.data"),
    "JSON array": (message(b"[]"), 400, "message.data"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_maps_to_its_status(case: str) -> None:
    msg, status, field = BAD[case]
    with pytest.raises(TriggerError) as raised:
        parse_build(msg)
    assert (raised.value.status, raised.value.field) == (status, field), raised.value


# --- fuzzing: nothing but TriggerError escapes --------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
USED = ["id", "status", "substitutions", "tags", "results", "logUrl", "statusDetail"]
attributes = st.dictionaries(st.sampled_from(["buildId", "status"]), st.text(max_size=20), max_size=2)


def parse_or_error(msg: PubSubMessage) -> None:
    try:
        parse_build(msg)
    except TriggerError as exc:
        assert 400 <= exc.status < 500


@given(data=st.binary(max_size=128), attrs=attributes)
def test_fuzz_bytes(data: bytes, attrs: dict[str, str]) -> None:
    parse_or_error(message(data, **attrs))


@given(changes=st.dictionaries(st.sampled_from(USED), json_values, max_size=3), attrs=attributes)
def test_fuzz_used_fields_of_the_sample(changes: dict[str, Any], attrs: dict[str, str]) -> None:
    data = build()
    data.update(changes)
    parse_or_error(message(data, **attrs))


@given(images=st.lists(st.dictionaries(st.sampled_from(["name", "digest"]), json_values), max_size=3))
def test_fuzz_result_images(images: list[Any]) -> None:
    parse_or_error(message(build(results={"images": images})))
