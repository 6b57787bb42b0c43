"""The webhook service layer: route, persist, publish, dedupe — against fakes, on GitHub's own samples."""

from __future__ import annotations

import json
from pathlib import Path

from relaunch.pipelines.commands import COMMANDS_TOPIC
from relaunch.pipelines.ingest import IngestService
from relaunch.pipelines.spec import JobSpec, PipelineSpec, SourceSpec
from relaunch.simulate import github_headers
from relaunch.triggers.github import parse_github
from tests.fakes import FakeBus, FakeStore

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "github"
SECRET = "s3cret"
JOB = JobSpec(command=["python", "x.py"])
HELLO = PipelineSpec(
    name="hello",
    source=SourceSpec(repo="Codertocat/Hello-World", branches=["master"]),
    train=JOB,
    evaluate=JOB,
    endpoint="hello",
)


def deliver(service: IngestService, sample: str, event: str, delivery: str = "d-1") -> tuple[int, dict]:
    body = (SAMPLES / sample).read_bytes()
    headers = github_headers(event, body, SECRET, delivery)
    parsed = parse_github(headers, body, secret=SECRET)
    reply = service.github(parsed, headers, body)
    return reply.status, reply.body


def world(*specs: PipelineSpec) -> tuple[IngestService, FakeStore, FakeBus]:
    store, bus = FakeStore(), FakeBus()
    return IngestService(store, bus, lambda: {s.name: s for s in specs}), store, bus


def test_a_watched_push_writes_inbox_and_run_then_publishes_start() -> None:
    service, store, bus = world(HELLO)
    status, body = deliver(service, "push.2.json", "push")
    assert status == 202 and body["outcome"] == "accepted" and len(body["runs"]) == 1
    run = store.runs[body["runs"][0]]
    assert run.pipeline == "hello" and run.trigger.sha == json.loads((SAMPLES / "push.2.json").read_text())["after"]
    assert bus.messages == [(COMMANDS_TOPIC, {"run_id": run.id, "type": "start_run"}, {"run_id": run.id})]
    delivery = store.deliveries["github:d-1"]
    assert delivery.outcome == "accepted+published" and delivery.headers["X-Hub-Signature-256"] == "[redacted]"
    assert "sha256=" not in delivery.model_dump_json()


def test_a_duplicate_delivery_does_nothing_else() -> None:
    service, store, bus = world(HELLO)
    deliver(service, "push.2.json", "push")
    status, body = deliver(service, "push.2.json", "push")
    assert status == 200 and body["outcome"] == "duplicate"
    assert len(store.runs) == 1 and len(bus.messages) == 1


def test_a_duplicate_of_a_delivery_that_died_before_publishing_publishes() -> None:
    service, store, bus = world(HELLO)
    deliver(service, "push.2.json", "push")
    store.set_delivery_outcome("github:d-1", "accepted")  # as if the process died between write and publish
    deliver(service, "push.2.json", "push")
    assert len(bus.messages) == 2 and store.deliveries["github:d-1"].outcome == "accepted+published"


def test_a_tag_push_is_skipped_with_the_reason() -> None:
    service, store, bus = world(HELLO)
    status, body = deliver(service, "push.1.json", "push")
    assert status == 202 and body["outcome"] == "skipped" and "tags are not watched" in body["skipped"]["hello"]
    assert store.runs == {} and bus.messages == [] and "github:d-1" in store.deliveries


def test_a_push_nobody_watches_says_so() -> None:
    service, store, _ = world()
    status, body = deliver(service, "push.2.json", "push")
    assert status == 202 and body["reason"] == "no pipeline watches Codertocat/Hello-World"


def test_ping_summarises_what_the_hook_acts_on() -> None:
    service, store, _ = world(HELLO)
    status, body = deliver(service, "ping.1.json", "ping")
    assert status == 200 and body["outcome"] == "pong"
    assert deliver(service, "ping.1.json", "ping")[1]["outcome"] == "duplicate"


def test_events_not_acted_on_are_answered_202_ignored() -> None:
    service, store, bus = world(HELLO)
    status, body = deliver(service, "pull_request.opened.1.json", "pull_request")
    assert status == 202 and body["outcome"] == "ignored" and body["reason"]
    assert bus.messages == []
