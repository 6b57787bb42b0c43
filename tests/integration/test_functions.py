"""The entry points as functions-framework serves them (its own Flask app, in process), over real SQLite."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from flask.testing import FlaskClient

from relaunch import bootstrap
from relaunch.adapters.local.bus import Push
from relaunch.adapters.local.bus_dispatcher import eventarc_request
from relaunch.domain.ports import ConflictError
from relaunch.settings import Settings
from relaunch.simulate import (
    cloud_build_message,
    github_headers,
    monitoring_incident,
    retrain_data,
    schedule_data,
    wandb_payload,
)
from relaunch.triggers.signing import wandb_signature

ROOT = Path(__file__).resolve().parents[2]
SOURCE = str(ROOT / "src" / "relaunch" / "functions" / "main.py")
SAMPLES = ROOT / "tests" / "samples"
GITHUB = SAMPLES / "github"


def settings(tmp_path: Path, **kw: Any) -> Settings:
    base = {"home": tmp_path, "pipelines_dir": ROOT / "pipelines", "github_webhook_secret": "s"}
    return Settings(**{**base, "wandb_webhook_token": "tok", "wandb_webhook_secret": "wsec", **kw})


@pytest.fixture
def app(tmp_path: Path) -> Iterator[bootstrap.App]:
    built = bootstrap.App(settings(tmp_path))
    bootstrap.use(built)
    yield built
    bootstrap.use(None)


def client(target: str) -> FlaskClient:
    return functions_framework.create_app(target, SOURCE).test_client()


def pubsub_event(
    data: Any, *, raw: bytes | None = None, topic: str = "relaunch-commands", message_id: str = "7"
) -> tuple[dict[str, str], bytes]:
    push = Push(message_id, "sub", 1, "http://unused", topic, {}, {}, time.time())
    headers, body = eventarc_request(push)
    envelope = json.loads(body)
    encoded = raw if raw is not None else base64.b64encode(json.dumps(data).encode())
    envelope["message"]["data"] = encoded.decode()
    return headers, json.dumps(envelope).encode()


command_event = pubsub_event


@pytest.mark.parametrize(
    ("data", "raw", "reason"),
    [
        (None, b"!!not base64!!", "message.data"),
        (None, base64.b64encode(b"not json"), "JSON"),
        ({"type": "start_run"}, None, "run_id"),
        ({"type": "teleport", "run_id": "r"}, None, "type"),
        ({"type": "start_run", "run_id": "no-such-run"}, None, "no run 'no-such-run'"),
    ],
)
def test_a_bad_command_is_acknowledged_and_dead_lettered(
    app: bootstrap.App, data: Any, raw: bytes | None, reason: str
) -> None:
    headers, body = command_event(data, raw=raw)
    reply = client("orchestrator").post("/", data=body, headers=headers)
    assert 200 <= reply.status_code < 300
    dead = app.store.list_dead_letters()
    assert len(dead) == 1 and dead[0].source == "relaunch-commands" and reason in dead[0].reason


def test_a_transient_failure_answers_5xx_so_the_bus_retries(tmp_path: Path) -> None:
    class Racing:
        def handle(self, command: object) -> None:
            raise ConflictError("another orchestrator saved the run first")

    built = bootstrap.App(settings(tmp_path), overrides={"orchestrator": Racing()})
    bootstrap.use(built)
    try:
        headers, body = command_event({"type": "start_run", "run_id": "r1"})
        reply = client("orchestrator").post("/", data=body, headers=headers)
    finally:
        bootstrap.use(None)
    assert reply.status_code == 503 and "ConflictError" not in reply.get_data(as_text=True)
    assert built.store.list_dead_letters() == []


def test_a_retrain_request_on_the_commands_topic_starts_one_run(app: bootstrap.App) -> None:
    data = retrain_data("relaunch-demo/digits", "main", "digits", "new labels", 5, "981-1-digits")
    for message_id in ("m-1", "m-2"):  # a re-run of the workflow step publishes the same request again
        headers, body = command_event(data, message_id=message_id)
        assert client("orchestrator").post("/", data=body, headers=headers).status_code == 200
    [delivery] = app.store.list_deliveries()
    assert delivery.key == "retrain:981-1-digits" and delivery.source == "retrain"
    [run] = app.store.list_runs()
    assert run.state.value == "received" and run.trigger.kind == "manual" and run.trigger.priority == 5
    assert run.trigger.ref == "refs/heads/main" and run.trigger.reason == "new labels"


def test_a_retrain_request_naming_no_watching_pipeline_is_dead_lettered(app: bootstrap.App) -> None:
    headers, body = command_event(retrain_data("relaunch-demo/digits", "main", "nope", "", None, None))
    assert client("orchestrator").post("/", data=body, headers=headers).status_code == 200
    [dead] = app.store.list_dead_letters()
    assert dead.source == "retrain" and "retrain.pipeline" in dead.reason and app.store.list_runs() == []


# -- github_webhook --------------------------------------------------------------------------------------------


def test_the_webhook_answers_a_signed_ping_and_refuses_an_unsigned_one(app: bootstrap.App) -> None:
    body = (GITHUB / "ping.1.json").read_bytes()
    webhook = client("github_webhook")
    good = webhook.post("/", data=body, headers=github_headers("ping", body, "s", "p-1"))
    assert good.status_code == 200 and good.get_json()["outcome"] == "pong"
    unsigned = {k: v for k, v in github_headers("ping", body, "s", "p-2").items() if k != "X-Hub-Signature-256"}
    refused = webhook.post("/", data=body, headers=unsigned)
    assert refused.status_code == 401 and app.store.get_delivery("github:p-2") is None


PUSH = (GITHUB / "push.2.json").read_bytes()


def _github_case(name: str) -> tuple[bytes, dict[str, str]]:
    signed = github_headers("push", PUSH, "s")
    cases: dict[str, tuple[bytes, dict[str, str]]] = {
        "wrong secret": (PUSH, github_headers("push", PUSH, "other")),
        "truncated body": (PUSH[:-10], {**signed}),
        "not utf-8": (b"\xff\xfe{}", github_headers("push", b"\xff\xfe{}", "s")),
        "wrong content type": (PUSH, {**signed, "Content-Type": "text/plain"}),
        "wrong types": (b'{"ref": 5}', github_headers("push", b'{"ref": 5}', "s")),
        "no delivery id": (PUSH, {k: v for k, v in signed.items() if k != "X-GitHub-Delivery"}),
    }
    return cases[name]


@pytest.mark.parametrize(
    ("case", "status", "field"),
    [
        ("wrong secret", 401, "X-Hub-Signature-256"),
        ("truncated body", 401, "X-Hub-Signature-256"),
        ("not utf-8", 400, None),
        ("wrong content type", 415, "Content-Type"),
        ("wrong types", 422, "ref"),
        ("no delivery id", 400, "X-GitHub-Delivery"),
    ],
)
def test_bad_github_deliveries_get_their_4xx_and_write_nothing(
    app: bootstrap.App, case: str, status: int, field: str | None
) -> None:
    body, headers = _github_case(case)
    reply = client("github_webhook").post("/", data=body, headers=headers)
    assert reply.status_code == status and reply.get_json()["field"] == field
    assert app.store.list_deliveries() == []


def test_a_bad_dispatch_input_is_a_422_naming_it(tmp_path: Path) -> None:
    specs = tmp_path / "pipelines"
    specs.mkdir()
    text = (ROOT / "pipelines" / "digits.yaml").read_text().replace("relaunch-demo/digits", "octo-org/octo-repo")
    (specs / "digits.yaml").write_text(text)
    bootstrap.use(bootstrap.App(settings(tmp_path, pipelines_dir=specs)))
    try:
        payload = json.loads((GITHUB / "workflow_dispatch.1.json").read_text())
        payload["inputs"] = {"pipeline": "digits", "priority": "urgent"}
        body = json.dumps(payload).encode()
        reply = client("github_webhook").post("/", data=body, headers=github_headers("workflow_dispatch", body, "s"))
    finally:
        bootstrap.use(None)
    assert reply.status_code == 422 and reply.get_json()["field"] == "inputs.priority"


def test_an_oversized_body_is_refused_with_413_before_it_is_read(tmp_path: Path) -> None:
    bootstrap.use(bootstrap.App(settings(tmp_path, max_body_bytes=100)))
    try:
        reply = client("github_webhook").post("/", data=PUSH, headers=github_headers("push", PUSH, "s", "big"))
    finally:
        bootstrap.use(None)
    assert reply.status_code == 413 and "100 bytes" in reply.get_json()["error"]


def test_development_mode_accepts_unsigned_deliveries(tmp_path: Path) -> None:
    dev = settings(tmp_path, github_webhook_secret=None, insecure_dev_mode=True)
    bootstrap.use(bootstrap.App(dev))
    try:
        body = (GITHUB / "ping.1.json").read_bytes()
        unsigned = {k: v for k, v in github_headers("ping", body, "", "p-9").items() if k != "X-Hub-Signature-256"}
        reply = client("github_webhook").post("/", data=body, headers=unsigned)
    finally:
        bootstrap.use(None)
    assert reply.status_code == 200 and reply.get_json()["outcome"] == "pong"


@pytest.mark.parametrize(
    ("function", "variable"),
    [("github_webhook", "RELAUNCH_GITHUB_WEBHOOK_SECRET"), ("wandb_webhook", "RELAUNCH_WANDB_WEBHOOK_TOKEN")],
)
def test_a_webhook_without_its_secret_refuses_every_delivery_unless_in_development_mode(
    tmp_path: Path, function: str, variable: str
) -> None:
    # The module imports without building the app; the first request builds it, and every request is refused.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAUNCH_")}
    env["RELAUNCH_HOME"] = str(tmp_path)
    code = (
        "import functions_framework\n"
        f"webhook = functions_framework.create_app({function!r}, {SOURCE!r}).test_client()\n"
        "for _ in range(2):\n"
        "    reply = webhook.post('/', data=b'{}', headers={'Content-Type': 'application/json'})\n"
        "    print(reply.status_code, reply.get_data(as_text=True))\n"
    )
    refused = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 0 and refused.stdout.count("503 ") == 2
    assert variable in refused.stdout and "refusing deliveries (fail closed)" in refused.stdout
    env["RELAUNCH_INSECURE_DEV_MODE"] = "true"
    started = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert started.returncode == 0 and "503 " not in started.stdout  # let through unsigned, then refused as malformed
    assert started.stderr.count("INSECURE DEVELOPMENT MODE") == 2  # a warning for every unsigned delivery


@pytest.mark.parametrize("function", ["github_webhook", "wandb_webhook"])
def test_a_webhook_whose_app_cannot_be_built_refuses_every_delivery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, function: str
) -> None:
    monkeypatch.setenv("RELAUNCH_HOME", str(tmp_path))
    monkeypatch.setenv("RELAUNCH_MAX_BODY_BYTES", "0")  # not a valid setting: the app is never built
    body = (GITHUB / "ping.1.json").read_bytes()
    reply = client(function).post("/", data=body, headers=github_headers("ping", body, "s", "p-0"))
    assert reply.status_code == 503 and "refusing deliveries (fail closed)" in reply.get_json()["error"]
    assert "ValidationError" in reply.get_json()["error"] and "Traceback" not in reply.get_data(as_text=True)


# -- wandb_webhook ---------------------------------------------------------------------------------------------

WANDB = json.dumps(wandb_payload("CREATE_ARTIFACT", "acme/digits/digits-model:v1")).encode()


def wandb_headers(body: bytes = WANDB, token: str = "tok", secret: str = "wsec") -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {token}",
        "X-Wandb-Signature": wandb_signature(secret, body),
    }


def test_an_authenticated_wandb_event_is_kept_and_a_redelivery_is_a_duplicate(app: bootstrap.App) -> None:
    webhook = client("wandb_webhook")
    first = webhook.post("/", data=WANDB, headers=wandb_headers())
    again = webhook.post("/", data=WANDB, headers=wandb_headers())
    assert first.status_code == 202 and "acme/digits/digits-model" in first.get_json()["reason"]
    assert again.status_code == 200 and again.get_json()["outcome"] == "duplicate"
    [delivery] = app.store.list_deliveries()
    assert delivery.source == "wandb" and delivery.headers["Authorization"] == "[redacted]"
    assert "tok" not in json.dumps(delivery.headers) and delivery.headers["X-Wandb-Signature"] == "[redacted]"


@pytest.mark.parametrize(
    ("body", "headers", "status", "field"),
    [
        (WANDB, wandb_headers(token="nope"), 401, "Authorization"),
        (WANDB, {**wandb_headers(), "X-Wandb-Signature": "AAAA"}, 401, "X-Wandb-Signature"),
        (WANDB, {k: v for k, v in wandb_headers().items() if k != "Authorization"}, 401, "Authorization"),
        (WANDB, {**wandb_headers(), "Content-Type": "application/x-www-form-urlencoded"}, 415, "Content-Type"),
        (b"{oops", wandb_headers(b"{oops"), 400, None),
        (b'{"event_type": 7}', wandb_headers(b'{"event_type": 7}'), 422, "event_type"),
        (WANDB + b" " * 2_000_000, wandb_headers(WANDB + b" " * 2_000_000), 413, None),
    ],
    ids=["wrong token", "wrong signature", "no token", "form body", "not json", "wrong type", "too large"],
)
def test_bad_wandb_deliveries_get_their_4xx(
    app: bootstrap.App, body: bytes, headers: dict[str, str], status: int, field: str | None
) -> None:
    reply = client("wandb_webhook").post("/", data=body, headers=headers)
    assert reply.status_code == status and "Traceback" not in reply.get_data(as_text=True)
    assert reply.get_json().get("field") == field or status == 413
    assert app.store.list_deliveries() == []


# -- Pub/Sub functions -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "source", "data"),
    [
        ("drift_alert", "drift", monitoring_incident(pipeline="digits", endpoint=None, state="closed")),
        ("schedule_tick", "schedule", schedule_data("nope")),
        ("build_status", "cloudbuild", cloud_build_message("no-such-run")[0]),
    ],
)
def test_a_pubsub_delivery_is_kept_in_the_inbox_once(
    app: bootstrap.App, function: str, source: str, data: dict[str, Any]
) -> None:
    headers, body = pubsub_event(data, message_id="42")
    first = client(function).post("/", data=body, headers=headers)
    again = client(function).post("/", data=body, headers=headers)
    assert first.status_code == 200 and again.status_code == 200
    [delivery] = app.store.list_deliveries()
    assert delivery.key == f"pubsub:{function}:42" and delivery.source == source
    assert delivery.outcome.startswith("ignored: ") and app.store.list_dead_letters() == []


@pytest.mark.parametrize("function", ["drift_alert", "schedule_tick", "build_status"])
@pytest.mark.parametrize(
    ("data", "raw", "reason"),
    [
        (None, b"%%%", "message.data"),
        (None, base64.b64encode(b"{\xff\xfe"), "message.data"),
        ({"status": 5}, None, ""),
    ],
    ids=["bad base64", "not utf-8", "wrong shape"],
)
def test_a_malformed_pubsub_message_is_acknowledged_and_dead_lettered(
    app: bootstrap.App, function: str, data: Any, raw: bytes | None, reason: str
) -> None:
    headers, body = pubsub_event(data, raw=raw, message_id="9")
    for _ in range(2):  # the redelivery is a duplicate: one dead letter
        reply = client(function).post("/", data=body, headers=headers)
        assert 200 <= reply.status_code < 300
    [dead] = app.store.list_dead_letters()
    assert reason in dead.reason and app.store.get_delivery(f"pubsub:{function}:9") is not None


def test_an_event_that_is_not_a_pubsub_message_is_dead_lettered(app: bootstrap.App) -> None:
    headers, _ = pubsub_event({})
    reply = client("drift_alert").post("/", data=json.dumps({"nothing": 1}).encode(), headers=headers)
    assert reply.status_code == 200
    [dead] = app.store.list_dead_letters()
    assert dead.source == "drift" and "message" in dead.reason
