"""A finished Vertex AI job wakes its run through Pub/Sub, without waiting for the reconcile tick.

The path deploy wires (job_sink in triggers/relaunch.yaml): Cloud Logging's sink publishes the CustomJob's service
log entry to `relaunch-vertex-jobs`; the `vertex_job` function (functions-framework, on loopback, pushed to by the
Pub/Sub emulator) finds the active run waiting on that job in Firestore and publishes a JobNoticed on the commands
topic; the orchestrator function receives it. The emulator plays Cloud Logging's part: it publishes the entry.
"""

from __future__ import annotations

import copy
import json
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
from relaunch.domain.commands import COMMANDS_TOPIC, VERTEX_JOBS_TOPIC, JobNoticed
from relaunch.domain.model import Delivery, PipelineRun, RunState, Trigger
from relaunch.settings import Settings
from tests.integration.conftest import wait_until

ROOT = Path(__file__).resolve().parents[3]
SOURCE = str(ROOT / "src" / "relaunch" / "functions" / "main.py")
SAMPLE = ROOT / "tests" / "samples" / "vertex" / "customjob_service_logentry.json"
JOB_ID = "5386271923948961792"
JOB = f"projects/123456789/locations/us-central1/customJobs/{JOB_ID}"


class Recorder:
    """The orchestrator's place: records each command it is handed."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.lock = threading.Lock()

    def handle(self, command: Any) -> None:
        with self.lock:
            self.calls.append(command)


@pytest.fixture
def urls() -> Iterator[dict[str, str]]:
    """The vertex_job and orchestrator functions, each on its own loopback server (apps made one at a time)."""
    servers = {name: make_server("127.0.0.1", 0, functions_framework.create_app(name, SOURCE), threaded=True)
               for name in ("vertex_job", "orchestrator")}  # fmt: skip
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers.values()]
    for thread in threads:
        thread.start()
    yield {name: f"http://127.0.0.1:{s.server_port}/" for name, s in servers.items()}
    for server in servers.values():
        server.shutdown()
    for thread in threads:
        thread.join(5)


@pytest.fixture
def recorder(tmp_path: Path, store: FirestoreRunStore, project: str) -> Iterator[Recorder]:
    made = Recorder()
    settings = Settings(
        home=tmp_path, pipelines_dir=ROOT / "pipelines", store="firestore", bus="pubsub", gcp_project=project
    )
    bootstrap.use(bootstrap.App(settings, overrides={"store": store, "orchestrator": made}))
    yield made
    bootstrap.use(None)


def waiting_run(store: FirestoreRunStore, run_id: str, job: str) -> PipelineRun:
    trigger = Trigger(kind="push", delivery_key=f"d-{run_id}", repo="relaunch-demo/digits", sha="a" * 40)
    run = PipelineRun(id=run_id, pipeline="digits", trigger=trigger, state=RunState.TRAINING, jobs={"train": job})
    store.record_delivery(Delivery(key=f"d-{run_id}", source="github"), [run])
    return run


def entry(job_id: str) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(json.loads(SAMPLE.read_text()))
    data["resource"]["labels"]["job_id"] = job_id
    return data


def wire(bus: PubSubBus, urls: dict[str, str]) -> None:
    for topic in (VERTEX_JOBS_TOPIC, COMMANDS_TOPIC):
        bus.ensure_topic(topic)
    bus.ensure_push_subscription("vertex-job", VERTEX_JOBS_TOPIC, urls["vertex_job"])
    bus.ensure_push_subscription("orchestrator", COMMANDS_TOPIC, urls["orchestrator"])


def test_a_job_log_entry_wakes_the_run_waiting_on_that_job(
    bus: PubSubBus, urls: dict[str, str], recorder: Recorder, store: FirestoreRunStore
) -> None:
    wire(bus, urls)
    waiting_run(store, "digits-1", JOB)
    waiting_run(store, "digits-2", JOB.replace(JOB_ID, "77"))

    message_id = bus.publish(VERTEX_JOBS_TOPIC, entry(JOB_ID))

    wait_until(lambda: bool(recorder.calls), timeout=30, what="the orchestrator's JobNoticed")
    assert recorder.calls == [JobNoticed(run_id="digits-1", job_id=JOB_ID)]
    key = f"pubsub:vertex_job:{message_id}"  # the nudge goes out before the inbox row is written (ingest.accept)
    wait_until(lambda: store.get_delivery(key) is not None, timeout=30, what="the kept delivery")
    kept = store.get_delivery(key)
    assert kept is not None and kept.source == "vertex" and kept.outcome == "accepted"


def test_an_entry_of_a_job_no_run_waits_on_is_kept_and_wakes_nobody(
    bus: PubSubBus, urls: dict[str, str], recorder: Recorder, store: FirestoreRunStore
) -> None:
    wire(bus, urls)
    message_id = bus.publish(VERTEX_JOBS_TOPIC, entry("123"))
    key = f"pubsub:vertex_job:{message_id}"
    wait_until(lambda: store.get_delivery(key) is not None, timeout=30, what="the kept delivery")
    assert store.get_delivery(key).outcome.startswith("ignored")  # type: ignore[union-attr]
    assert recorder.calls == [] and store.list_dead_letters() == []


def test_an_entry_that_is_not_a_job_entry_is_dead_lettered(
    bus: PubSubBus, urls: dict[str, str], recorder: Recorder, store: FirestoreRunStore
) -> None:
    wire(bus, urls)
    bus.publish(VERTEX_JOBS_TOPIC, {**entry(JOB_ID), "resource": {"type": "gce_instance", "labels": {}}})
    wait_until(lambda: bool(store.list_dead_letters()), timeout=30, what="a dead letter")
    [letter] = store.list_dead_letters()
    assert letter.source == "vertex" and "resource.type" in letter.reason
    assert recorder.calls == []
