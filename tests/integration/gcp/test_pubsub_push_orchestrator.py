"""The orchestrator function, served by functions-framework on loopback, fed by a Pub/Sub emulator push subscription.

This is the path the GCP profile takes when a push subscription (rather than Eventarc) delivers commands: the
emulator posts the raw push envelope, functions-framework turns it into a CloudEvent, the function acknowledges
with 2xx, retries on 5xx (a transient failure) and dead-letters a malformed command into the Firestore store.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from werkzeug.serving import make_server

from relaunch import bootstrap
from relaunch.adapters.gcp.firestore_store import FirestoreRunStore
from relaunch.adapters.gcp.pubsub_bus import PubSubBus
from relaunch.domain.commands import COMMANDS_TOPIC, StartRun
from relaunch.domain.ports import ConflictError
from relaunch.settings import Settings
from tests.integration.conftest import wait_until

ROOT = Path(__file__).resolve().parents[3]
SOURCE = str(ROOT / "src" / "relaunch" / "functions" / "main.py")


class FlakyHandler:
    """Records each command; raises ConflictError (transient) for the first `failures` calls."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[Any] = []
        self.lock = threading.Lock()

    def handle(self, command: Any) -> None:
        with self.lock:
            self.calls.append(command)
            if len(self.calls) <= self.failures:
                raise ConflictError("another orchestrator saved the run first")


@pytest.fixture
def function_url() -> Iterator[str]:
    """relaunch's orchestrator function under functions-framework, on a real loopback HTTP server."""
    server = make_server("127.0.0.1", 0, functions_framework.create_app("orchestrator", SOURCE), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    thread.join(5)


def use_app(tmp_path: Path, store: FirestoreRunStore, handler: FlakyHandler) -> None:
    settings = Settings(home=tmp_path, pipelines_dir=ROOT / "pipelines", store="firestore", bus="pubsub")
    bootstrap.use(bootstrap.App(settings, overrides={"store": store, "orchestrator": handler}))


@pytest.fixture
def handler(tmp_path: Path, store: FirestoreRunStore) -> Iterator[FlakyHandler]:
    made = FlakyHandler(failures=1)
    use_app(tmp_path, store, made)
    yield made
    bootstrap.use(None)


def subscribe(bus: PubSubBus, url: str) -> None:
    bus.ensure_topic(COMMANDS_TOPIC)
    bus.ensure_push_subscription("orchestrator", COMMANDS_TOPIC, url)


def test_a_pushed_command_reaches_the_handler_and_a_transient_failure_is_retried(
    bus: PubSubBus, function_url: str, handler: FlakyHandler, store: FirestoreRunStore
) -> None:
    subscribe(bus, function_url)

    bus.publish(COMMANDS_TOPIC, StartRun(run_id="r1").model_dump(), {"origin": "github"})

    wait_until(lambda: len(handler.calls) >= 2, timeout=30, what="the retried delivery")
    assert handler.calls[:2] == [StartRun(run_id="r1"), StartRun(run_id="r1")]  # a lost race, tried again
    assert store.list_dead_letters() == []


def test_a_malformed_command_is_acknowledged_and_dead_lettered_in_firestore(
    bus: PubSubBus, function_url: str, handler: FlakyHandler, store: FirestoreRunStore
) -> None:
    subscribe(bus, function_url)

    message_id = bus.publish(COMMANDS_TOPIC, {"type": "teleport", "run_id": "r1"})

    wait_until(lambda: bool(store.list_dead_letters()), timeout=15, what="a dead letter")
    [letter] = store.list_dead_letters()
    assert letter.source == COMMANDS_TOPIC and "type" in letter.reason
    assert message_id in letter.payload and "teleport" not in letter.payload  # the data stays base64-encoded
    assert handler.calls == []
