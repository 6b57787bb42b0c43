"""Manual retrain requests on the commands topic: parsing, and the runs the service makes of them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from relaunch.domain.commands import COMMANDS_TOPIC
from relaunch.domain.model import Delivery
from relaunch.domain.spec import EvaluateSpec, JobSpec, PipelineSpec, SourceSpec
from relaunch.service.ingest import IngestService
from relaunch.simulate import retrain_data
from relaunch.triggers.errors import TriggerError
from relaunch.triggers.pubsub import PubSubMessage
from relaunch.triggers.retrain import RetrainRequest, is_retrain, parse_retrain
from tests.fakes import FakeBus, FakeStore

JOB = JobSpec(command=["python", "x.py"])
EVAL = EvaluateSpec(command=["python", "x.py"])


def spec(name: str) -> PipelineSpec:
    source = SourceSpec(repo="octo-org/octo-repo", branches=["main"], clone_url="file:///octo")
    return PipelineSpec(name=name, source=source, train=JOB, evaluate=EVAL, endpoint=name)


def message(data: bytes | dict[str, Any], message_id: str = "m-1") -> PubSubMessage:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return PubSubMessage(message_id, raw, attributes={}, publish_time=None, subscription=None, ordering_key=None)


def request(**fields: Any) -> RetrainRequest:
    return parse_retrain(message({"type": "retrain", "repo": "octo-org/octo-repo", **fields}))


def world(*specs: PipelineSpec) -> tuple[IngestService, FakeStore, FakeBus]:
    store, bus = FakeStore(), FakeBus()
    return IngestService(store, bus, lambda: {s.name: s for s in specs}), store, bus


def delivery(message_id: str = "m-1") -> Delivery:
    return Delivery(key=f"pubsub:orchestrator:{message_id}", source="retrain", headers={}, body="{}")


def test_the_simulated_request_parses_with_every_field() -> None:
    data = retrain_data("octo-org/octo-repo", "main", "octo", "new labels", 42, "981-1-octo")
    assert is_retrain(data)
    parsed = parse_retrain(message(data))
    assert parsed.repo == "octo-org/octo-repo" and parsed.ref == "refs/heads/main"  # a bare branch becomes a ref
    assert parsed.inputs == {"pipeline": "octo", "reason": "new labels", "priority": "42", "sha": "", "force": "false"}
    assert parsed.request_id == "981-1-octo" and parsed.requested_by is None


def test_run_commands_are_not_retrain_requests() -> None:
    assert not is_retrain({"type": "start_run", "run_id": "r"})


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"not json", "message.data"),
        ({"type": "retrain"}, "repo"),
        ({"type": "retrain", "repo": "no-slash"}, "repo"),
        ({"type": "retrain", "repo": "a/b", "priority": True}, "priority"),
        ({"type": "retrain", "repo": "a/b", "priority": 1.5}, "priority"),
        ({"type": "retrain", "repo": "a/b", "reason": 7}, "reason"),
        ({"type": "retrain", "repo": "a/b", "reason": "x" * 301}, "reason"),
        ({"type": "retrain", "repo": "a/b", "request_id": "has space"}, "request_id"),
        ({"type": "retrain", "repo": "a/b", "secret": "oops"}, "secret"),
    ],
)
def test_bad_requests_name_their_field(data: bytes | dict[str, Any], field: str) -> None:
    with pytest.raises(TriggerError) as err:
        parse_retrain(message(data))
    assert err.value.field == field


def test_a_request_starts_a_manual_run_keyed_by_its_request_id() -> None:
    service, store, bus = world(spec("octo"))
    reply = service.retrain(request(ref="main", reason="fresh data", priority=9, request_id="77-1"), delivery())
    assert reply.status == 202
    run = store.runs[reply.body["runs"][0]]
    assert (run.trigger.kind, run.trigger.ref, run.trigger.reason, run.trigger.priority) == (
        "manual",
        "refs/heads/main",
        "fresh data",
        9,
    )
    assert run.trigger.delivery_key == "retrain:77-1"
    assert bus.messages == [(COMMANDS_TOPIC, {"run_id": run.id, "type": "start_run"}, {"run_id": run.id})]


def test_the_same_request_published_twice_starts_one_run() -> None:
    service, store, bus = world(spec("octo"))
    service.retrain(request(request_id="77-1"), delivery("m-1"))
    again = service.retrain(request(request_id="77-1"), delivery("m-2"))  # a re-run step publishes a new message
    assert again.body["outcome"] == "duplicate" and len(store.runs) == 1 and len(bus.messages) == 1


def test_a_request_naming_a_commit_trains_that_commit_not_the_refs_head() -> None:
    service, store, _ = world(spec("octo"))
    reply = service.retrain(request(sha="3F786850E387550FDAB836ED7E6DC881DE23001B"), delivery())
    assert store.runs[reply.body["runs"][0]].trigger.sha == "3f786850e387550fdab836ed7e6dc881de23001b"
    bad = service.retrain(request(sha="main"), delivery("m-2"))
    assert bad.body["outcome"] == "dead-lettered" and bad.body["reason"].startswith("retrain.sha")


def test_without_a_request_id_the_message_id_is_the_key() -> None:
    service, store, _ = world(spec("octo"))
    reply = service.retrain(request(), delivery("m-9"))
    assert store.runs[reply.body["runs"][0]].trigger.delivery_key == "pubsub:orchestrator:m-9"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"pipeline": "nope"}, "retrain.pipeline"),
        ({}, "retrain.pipeline"),
        ({"pipeline": "octo", "priority": 101}, "retrain.priority"),
    ],
)
def test_inputs_that_cannot_be_acted_on_are_dead_lettered_once(fields: dict[str, Any], field: str) -> None:
    service, store, bus = world(spec("octo"), spec("other"))
    reply = service.retrain(request(**fields), delivery())
    assert reply.body["outcome"] == "dead-lettered" and reply.body["reason"].startswith(field)
    assert store.runs == {} and bus.messages == [] and len(store.dead) == 1
    service.retrain(request(**fields), delivery())
    assert len(store.dead) == 1
