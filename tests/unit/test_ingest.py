"""The GitHub webhook service layer: route, persist, publish, dedupe — against fakes, on GitHub's own samples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from relaunch.domain.commands import COMMANDS_TOPIC
from relaunch.domain.spec import EvaluateSpec, JobSpec, PipelineSpec, SourceSpec
from relaunch.service.ingest import IngestService
from relaunch.simulate import github_headers
from relaunch.triggers.errors import Unprocessable
from relaunch.triggers.github import parse_github
from tests.fakes import FakeBus, FakeStore

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "github"
SECRET = "s3cret"
JOB = JobSpec(command=["python", "x.py"])
EVAL = EvaluateSpec(command=["python", "x.py"])
HELLO = PipelineSpec(
    name="hello",
    source=SourceSpec(repo="Codertocat/Hello-World", branches=["master"]),
    train=JOB,
    evaluate=EVAL,
    endpoint="hello",
)


def spec(name: str = "hello", repo: str = "Codertocat/Hello-World", **source: Any) -> PipelineSpec:
    return HELLO.model_copy(update={"name": name, "source": SourceSpec(repo=repo, **source)})


def deliver(
    service: IngestService, sample: str | dict[str, Any], event: str, delivery: str = "d-1"
) -> tuple[int, dict[str, Any]]:
    body = (SAMPLES / sample).read_bytes() if isinstance(sample, str) else json.dumps(sample).encode()
    headers = github_headers(event, body, SECRET, delivery)
    parsed = parse_github(headers, body, secret=SECRET)
    reply = service.github(parsed, headers, body)
    return reply.status, reply.body


def world(*specs: PipelineSpec) -> tuple[IngestService, FakeStore, FakeBus]:
    store, bus = FakeStore(), FakeBus()
    return IngestService(store, bus, lambda: {s.name: s for s in specs}), store, bus


def sample(name: str) -> dict[str, Any]:
    return dict(json.loads((SAMPLES / name).read_text()))


def test_a_watched_push_writes_inbox_and_run_then_publishes_start() -> None:
    service, store, bus = world(HELLO)
    status, body = deliver(service, "push.2.json", "push")
    assert status == 202 and body["outcome"] == "accepted" and len(body["runs"]) == 1
    run = store.runs[body["runs"][0]]
    assert run.pipeline == "hello" and run.trigger.sha == sample("push.2.json")["after"]
    assert bus.messages == [(COMMANDS_TOPIC, {"run_id": run.id, "type": "start_run"}, {"run_id": run.id})]
    delivery = store.deliveries["github:d-1"]
    assert delivery.outcome == "accepted" and delivery.headers["X-Hub-Signature-256"] == "[redacted]"
    assert "sha256=" not in delivery.model_dump_json()
    assert delivery.body == (SAMPLES / "push.2.json").read_text()


def test_a_duplicate_delivery_does_nothing_else() -> None:
    service, store, bus = world(HELLO)
    deliver(service, "push.2.json", "push")
    status, body = deliver(service, "push.2.json", "push")
    assert status == 200 and body["outcome"] == "duplicate"
    assert len(store.runs) == 1 and len(bus.messages) == 1


def test_a_duplicate_never_publishes_again_even_after_a_crash_before_publishing() -> None:
    """Its runs are started by the reconcile tick (tests/unit/test_reconcile.py), not by a redelivery."""
    service, store, bus = world(HELLO)
    deliver(service, "push.2.json", "push")
    bus.messages.clear()  # as if the process died between the write and the publish
    status, body = deliver(service, "push.2.json", "push")
    assert (status, body["outcome"]) == (200, "duplicate") and bus.messages == [] and len(store.runs) == 1


def test_tags_start_runs_only_when_a_spec_asks_for_them() -> None:
    service, store, bus = world(HELLO)
    status, body = deliver(service, "push.1.json", "push")
    assert status == 202 and body["outcome"] == "skipped" and "tags are not watched" in body["skipped"]["hello"]
    assert store.runs == {} and bus.messages == [] and "github:d-1" in store.deliveries
    service, store, _ = world(spec(tags=["simple-*"]))
    status, body = deliver(service, "push.1.json", "push")
    assert body["outcome"] == "accepted" and store.runs[body["runs"][0]].trigger.ref == "refs/tags/simple-tag"


def test_a_deleted_ref_is_ignored() -> None:
    service, store, _ = world(HELLO)
    payload = {**sample("push.2.json"), "deleted": True, "created": False, "after": "0" * 40}
    status, body = deliver(service, payload, "push")
    assert status == 202 and body["skipped"] == {"hello": "ref deleted"} and store.runs == {}


def test_a_push_touching_no_watched_path_is_skipped_and_a_skip_status_is_published() -> None:
    service, store, bus = world(spec(branches=["master"], paths=["src/**"]))
    status, body = deliver(service, "push.2.json", "push")  # changes README.md only
    assert status == 202 and body["outcome"] == "skipped" and "no watched path changed" in body["skipped"]["hello"]
    assert store.runs == {}
    [(topic, command, _)] = bus.messages
    assert topic == COMMANDS_TOPIC and command["type"] == "report_skip"
    assert command["sha"] == sample("push.2.json")["after"]
    assert command["description"] == "skipped: no watched path changed"


def test_a_truncated_commit_list_counts_as_changed() -> None:
    payload = sample("push.2.json")
    payload["commits"] = [dict(payload["commits"][0], id=f"{i:040x}") for i in range(20)]  # GitHub's cap
    service, store, _ = world(spec(branches=["master"], paths=["src/**"]))
    assert deliver(service, payload, "push")[1]["outcome"] == "accepted"


def test_a_push_nobody_watches_says_so() -> None:
    service, store, _ = world()
    status, body = deliver(service, "push.2.json", "push")
    assert status == 202 and body["reason"] == "no pipeline watches Codertocat/Hello-World"


def test_ping_summarises_what_the_hook_acts_on() -> None:
    service, store, _ = world(HELLO)
    status, body = deliver(service, "ping.1.json", "ping")
    assert status == 200 and body["outcome"] == "pong"
    assert deliver(service, "ping.1.json", "ping")[1]["outcome"] == "duplicate"


@pytest.mark.parametrize("sample_name", ["pull_request.opened.1.json", "pull_request.synchronize.1.json"])
def test_a_pull_request_starts_an_evaluation_only_run_of_its_head(sample_name: str) -> None:
    service, store, bus = world(HELLO)
    status, body = deliver(service, sample_name, "pull_request")
    assert status == 202 and body["outcome"] == "accepted"
    run = store.runs[body["runs"][0]]
    pr = sample(sample_name)["pull_request"]
    assert run.trigger.kind == "pull_request" and run.trigger.evaluate_only
    assert run.trigger.sha == pr["head"]["sha"] and run.trigger.pr_number == pr["number"]
    assert run.trigger.clone_url == HELLO.source.repo_clone_url()  # the spec's, never the payload's
    assert bus.messages[0][1]["type"] == "start_run"


def test_other_pull_request_actions_and_unwatched_bases_are_not_acted_on() -> None:
    service, store, _ = world(HELLO)
    closed = {**sample("pull_request.opened.1.json"), "action": "closed"}
    status, body = deliver(service, closed, "pull_request")
    assert status == 202 and body["outcome"] == "ignored" and "'closed'" in body["reason"]
    service, store, _ = world(spec(branches=["main"]))
    status, body = deliver(service, "pull_request.opened.1.json", "pull_request", "d-2")
    assert body["outcome"] == "skipped" and "base branch master" in body["skipped"]["hello"] and store.runs == {}


def octo(name: str = "octo", **source: Any) -> PipelineSpec:
    return spec(name, repo="octo-org/octo-repo", clone_url="file:///octo", **source)


def test_workflow_dispatch_starts_a_manual_run_of_the_refs_head() -> None:
    service, store, _ = world(octo())
    payload = {
        **sample("workflow_dispatch.1.json"),
        "workflow": ".github/workflows/retrain.yml",
        "inputs": {"reason": "new data", "priority": "7"},
    }
    status, body = deliver(service, payload, "workflow_dispatch")
    run = store.runs[body["runs"][0]]
    assert status == 202 and run.trigger.kind == "manual" and run.trigger.sha is None
    assert (run.trigger.ref, run.trigger.reason, run.trigger.priority) == ("refs/heads/main", "new data", 7)
    assert run.trigger.clone_url == "file:///octo"


def test_repository_dispatch_reads_its_client_payload() -> None:
    service, store, _ = world(octo(), octo("other"))
    payload = {
        "action": "retrain",
        "branch": "main",
        "client_payload": {"pipeline": "other", "priority": 3},
        "repository": sample("workflow_dispatch.1.json")["repository"],
        "sender": {"login": "octocat"},
    }
    status, body = deliver(service, payload, "repository_dispatch")
    run = store.runs[body["runs"][0]]
    assert status == 202 and run.pipeline == "other" and run.trigger.priority == 3
    assert run.trigger.ref == "refs/heads/main"


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({"pipeline": "octo", "priority": "high"}, "inputs.priority"),
        ({"pipeline": "octo", "priority": "101"}, "inputs.priority"),
        ({"pipeline": "octo", "priority": "-1"}, "inputs.priority"),
        ({"pipeline": "nope"}, "inputs.pipeline"),
        ({}, "inputs.pipeline"),  # two pipelines watch the repo: which one?
    ],
)
def test_bad_dispatch_inputs_are_a_422_naming_the_input_and_write_nothing(inputs: dict, field: str) -> None:
    service, store, bus = world(octo(), octo("other"))
    payload = {**sample("workflow_dispatch.1.json"), "workflow": ".github/workflows/retrain.yml", "inputs": inputs}
    with pytest.raises(Unprocessable) as err:
        deliver(service, payload, "workflow_dispatch")
    assert err.value.field == field and store.deliveries == {} and bus.messages == []


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("workflow_dispatch", sample("workflow_dispatch.1.json")),  # GitHub's sample: hello-world-workflow.yml
        ("repository_dispatch", sample("repository_dispatch.1.json")),  # event_type "on-demand-test"
    ],
)
def test_dispatches_meant_for_other_workflows_are_ignored(event: str, payload: dict) -> None:
    service, store, bus = world(octo())
    payload = {**payload, "repository": sample("workflow_dispatch.1.json")["repository"]}
    status, body = deliver(service, payload, event)
    assert status == 202 and body["outcome"] == "ignored" and "not for relaunch" in body["reason"]
    assert bus.messages == [] and store.runs == {}


def test_events_not_acted_on_are_answered_202_ignored() -> None:
    service, store, bus = world(HELLO)
    status, body = deliver(service, {"zen": "x", "repository": {"full_name": "a/b"}}, "star")
    assert status == 202 and body["outcome"] == "ignored" and "star" in body["reason"]
    assert bus.messages == [] and store.deliveries["github:d-1"].outcome.startswith("ignored: ")
