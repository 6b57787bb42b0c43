"""Valid JSON that is hostile (lone surrogates, absurd nesting, huge numbers) gets a clear 4xx or is processed."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import functions_framework
import pytest

from relaunch import bootstrap
from relaunch.simulate import github_headers, monitoring_incident, schedule_data, wandb_payload
from tests.integration.test_functions import GITHUB, ROOT, client, pubsub_event, settings, wandb_headers

LONE = "\ud800"  # valid JSON as the escape "\ud800", not valid Unicode text
DEEP = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
HUGE_INT = "9" * 10_000


@pytest.fixture
def app(tmp_path: Path) -> Iterator[bootstrap.App]:
    built = bootstrap.App(settings(tmp_path))
    bootstrap.use(built)
    yield built
    bootstrap.use(None)


def no_errors(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


def push_with(path: tuple[Any, ...], value: Any) -> bytes:
    payload = json.loads((GITHUB / "push.2.json").read_text())
    node = payload
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    ("path", "field"),
    [(("repository", "full_name"), "repository.full_name"), (("commits", 0, "message"), "commits.0.message")],
)
def test_a_lone_surrogate_in_a_push_is_a_400_naming_the_field(
    app: bootstrap.App, caplog: pytest.LogCaptureFixture, path: tuple[Any, ...], field: str
) -> None:
    body = push_with(path, LONE)
    reply = client("github_webhook").post("/", data=body, headers=github_headers("push", body, "s", "d-1"))
    assert reply.status_code == 422 and reply.get_json()["field"] == field
    assert "lone surrogate" in reply.get_json()["error"] and app.store.list_deliveries() == []
    no_errors(caplog)


def test_an_emoji_written_as_a_surrogate_pair_is_processed(
    app: bootstrap.App, caplog: pytest.LogCaptureFixture
) -> None:
    body = push_with(("head_commit", "message"), "ship it \U0001f600")
    assert b"\\ud83d\\ude00" in body
    reply = client("github_webhook").post("/", data=body, headers=github_headers("push", body, "s", "d-2"))
    assert reply.status_code < 300 and len(app.store.list_deliveries()) == 1
    no_errors(caplog)


def test_a_ref_with_a_lone_surrogate_is_still_a_422(app: bootstrap.App) -> None:
    body = push_with(("ref",), "refs/heads/" + LONE)
    reply = client("github_webhook").post("/", data=body, headers=github_headers("push", body, "s", "d-3"))
    assert reply.status_code == 422 and reply.get_json()["field"] == "ref"


def test_a_lone_surrogate_in_a_wandb_author_is_a_400(app: bootstrap.App, caplog: pytest.LogCaptureFixture) -> None:
    payload = {**wandb_payload("CREATE_ARTIFACT", "acme/digits/digits-model:v1"), "event_author": LONE}
    body = json.dumps(payload).encode()
    reply = client("wandb_webhook").post("/", data=body, headers=wandb_headers(body))
    assert reply.status_code == 422 and reply.get_json()["field"] == "event_author"
    assert app.store.list_deliveries() == []
    no_errors(caplog)


def incident_with_summary(summary: str) -> dict[str, Any]:
    data = monitoring_incident(pipeline="digits", endpoint=None, state="closed")
    data["incident"]["summary"] = summary
    return data


@pytest.mark.parametrize(
    ("function", "data", "field"),
    [
        ("schedule_tick", {**schedule_data("digits"), "reason": LONE}, "reason"),
        ("drift_alert", incident_with_summary(LONE), "incident.summary"),
    ],
)
def test_a_lone_surrogate_in_a_pubsub_message_is_dead_lettered_naming_it(
    app: bootstrap.App, caplog: pytest.LogCaptureFixture, function: str, data: dict[str, Any], field: str
) -> None:
    headers, body = pubsub_event(data, message_id="s-1")
    reply = client(function).post("/", data=body, headers=headers)
    assert 200 <= reply.status_code < 300
    [dead] = app.store.list_dead_letters()
    assert field in dead.reason and "lone surrogate" in dead.reason
    no_errors(caplog)


def envelope_with(headers: dict[str, str], body: bytes, **message: Any) -> bytes:
    document = json.loads(body)
    document["message"].update(message)
    return json.dumps(document).encode()


@pytest.mark.parametrize("function", ["drift_alert", "orchestrator"])
def test_a_lone_surrogate_in_the_envelope_or_attributes_is_dead_lettered(
    app: bootstrap.App, caplog: pytest.LogCaptureFixture, function: str
) -> None:
    headers, body = pubsub_event({"x": 1}, message_id="s-2")
    for hostile in (envelope_with(headers, body, attributes={"k": LONE}), envelope_with(headers, body, extra=LONE)):
        reply = client(function).post("/", data=hostile, headers=headers)
        assert 200 <= reply.status_code < 300
    assert app.store.list_dead_letters() and all("lone surrogate" in d.reason for d in app.store.list_dead_letters())
    no_errors(caplog)


@pytest.mark.parametrize("function", ["orchestrator", "reconcile"])
def test_a_lone_surrogate_in_a_command_is_never_a_5xx(
    app: bootstrap.App, caplog: pytest.LogCaptureFixture, function: str
) -> None:
    headers, body = pubsub_event({"type": "start_run", "run_id": LONE}, message_id="c-1")
    reply = client(function).post("/", data=body, headers=headers)
    assert reply.status_code < 500
    no_errors(caplog)


@pytest.mark.parametrize("function", ["drift_alert", "schedule_tick", "build_status", "orchestrator", "reconcile"])
def test_a_cloudevent_nested_100000_deep_is_a_400(
    app: bootstrap.App, caplog: pytest.LogCaptureFixture, function: str
) -> None:
    headers, _ = pubsub_event({})
    reply = client(function).post("/", data=DEEP, headers=headers)
    assert reply.status_code == 400 and reply.get_json()["field"] == "body"
    assert "Traceback" not in reply.get_data(as_text=True)
    no_errors(caplog)


@pytest.mark.parametrize("function", ["github_webhook", "wandb_webhook"])
def test_a_webhook_body_nested_100000_deep_is_a_400(app: bootstrap.App, function: str) -> None:
    headers = github_headers("push", DEEP, "s") if function == "github_webhook" else wandb_headers(DEEP)
    reply = client(function).post("/", data=DEEP, headers=headers)
    assert reply.status_code == 400


NUMBERS = ["1e999999", "-1e400", HUGE_INT, "NaN", "Infinity", "-Infinity"]
NUMBER_IDS = ["1e999999", "-1e400", "10000 digits", "NaN", "Infinity", "-Infinity"]


@pytest.mark.parametrize("number", NUMBERS, ids=NUMBER_IDS)
@pytest.mark.parametrize("function", ["drift_alert", "schedule_tick", "build_status", "orchestrator", "reconcile"])
def test_huge_numbers_in_a_pubsub_message_are_never_a_5xx(
    app: bootstrap.App, caplog: pytest.LogCaptureFixture, function: str, number: str
) -> None:
    raw = base64.b64encode(('{"pipeline": "digits", "n": ' + number + "}").encode())
    headers, body = pubsub_event(None, raw=raw, message_id="n-1")
    assert client(function).post("/", data=body, headers=headers).status_code < 500
    envelope = body.replace(b'"subscription"', b'"n": ' + number.encode() + b', "subscription"')
    assert client(function).post("/", data=envelope, headers=headers).status_code < 500
    no_errors(caplog)


@pytest.mark.parametrize("number", NUMBERS, ids=NUMBER_IDS)
def test_huge_numbers_in_a_push_are_never_a_5xx(app: bootstrap.App, number: str) -> None:
    body = push_with(("repository", "full_name"), "@@").replace(b'"@@"', number.encode())
    reply = client("github_webhook").post("/", data=body, headers=github_headers("push", body, "s", "d-n"))
    assert 400 <= reply.status_code < 500 and reply.get_json()["field"] in ("repository.full_name", None)


def test_the_deployed_source_installs_the_same_handlers(app: bootstrap.App, caplog: pytest.LogCaptureFixture) -> None:
    deployed = functions_framework.create_app("drift_alert", str(ROOT / "functions" / "main.py")).test_client()
    headers, _ = pubsub_event({})
    for _ in range(2):  # a second app gets them too
        reply = deployed.post("/", data=DEEP, headers=headers)
        assert reply.status_code == 400 and reply.get_json()["field"] == "body"
    no_errors(caplog)
