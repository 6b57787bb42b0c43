"""The entry points as functions-framework serves them (its own Flask app, in process), over real SQLite."""

from __future__ import annotations

import base64
import json
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
from relaunch.ports import ConflictError
from relaunch.settings import Settings
from relaunch.simulate import github_headers

ROOT = Path(__file__).resolve().parents[2]
SOURCE = str(ROOT / "src" / "relaunch" / "functions" / "main.py")
SAMPLES = ROOT / "tests" / "samples" / "github"


def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, pipelines_dir=ROOT / "pipelines", github_webhook_secret="s")  # type: ignore[arg-type]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[bootstrap.App]:
    built = bootstrap.App(settings(tmp_path))
    bootstrap.use(built)
    yield built
    bootstrap.use(None)


def client(target: str) -> FlaskClient:
    return functions_framework.create_app(target, SOURCE).test_client()


def command_event(data: Any, *, raw: bytes | None = None) -> tuple[dict[str, str], bytes]:
    push = Push("7", "orchestrator", 1, "http://unused", "relaunch-commands", {}, {}, time.time())
    headers, body = eventarc_request(push)
    envelope = json.loads(body)
    encoded = raw if raw is not None else base64.b64encode(json.dumps(data).encode())
    envelope["message"]["data"] = encoded.decode()
    return headers, json.dumps(envelope).encode()


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
    assert reply.status_code == 500 and "ConflictError" not in reply.get_data(as_text=True)
    assert built.store.list_dead_letters() == []


def test_the_webhook_answers_a_signed_ping_and_refuses_an_unsigned_one(app: bootstrap.App) -> None:
    body = (SAMPLES / "ping.1.json").read_bytes()
    webhook = client("github_webhook")
    good = webhook.post("/", data=body, headers=github_headers("ping", body, "s", "p-1"))
    assert good.status_code == 200 and good.get_json()["outcome"] == "pong"
    unsigned = {k: v for k, v in github_headers("ping", body, "s", "p-2").items() if k != "X-Hub-Signature-256"}
    refused = webhook.post("/", data=body, headers=unsigned)
    assert refused.status_code == 401 and app.store.get_delivery("github:p-2") is None


def test_with_no_secret_configured_every_delivery_is_refused(tmp_path: Path) -> None:
    bootstrap.use(bootstrap.App(Settings(home=tmp_path, pipelines_dir=ROOT / "pipelines")))
    try:
        body = (SAMPLES / "ping.1.json").read_bytes()
        reply = client("github_webhook").post("/", data=body, headers=github_headers("ping", body, "", "p-3"))
    finally:
        bootstrap.use(None)
    assert reply.status_code == 401


def test_an_oversized_body_is_refused_with_413_before_it_is_read(tmp_path: Path) -> None:
    small = Settings(home=tmp_path, pipelines_dir=ROOT / "pipelines", github_webhook_secret="s", max_body_bytes=100)  # type: ignore[arg-type]
    bootstrap.use(bootstrap.App(small))
    try:
        body = (SAMPLES / "push.2.json").read_bytes()
        reply = client("github_webhook").post("/", data=body, headers=github_headers("push", body, "s", "big"))
    finally:
        bootstrap.use(None)
    assert reply.status_code == 413 and "100 bytes" in reply.get_json()["error"]
