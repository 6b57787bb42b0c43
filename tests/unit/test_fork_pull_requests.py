"""Pull requests from forks: never built by default; on approval by someone with write access, for one head only."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from relaunch.domain.commands import COMMANDS_TOPIC, parse_command
from relaunch.domain.model import PipelineRun, RunState
from relaunch.domain.spec import JobSpec, PipelineSpec, PullRequestPolicy, SourceSpec
from relaunch.service.approval_step import NotAwaiting, approve_by_operator
from relaunch.service.ingest import IngestService
from relaunch.service.orchestrator import Deps, Orchestrator
from relaunch.simulate import github_headers
from relaunch.triggers.errors import Unprocessable
from relaunch.triggers.github import parse_github
from tests.fakes import (
    FakeBackend,
    FakeBlobs,
    FakeBuilder,
    FakeBus,
    FakeEndpoint,
    FakeNotifier,
    FakeRegistry,
    FakeStore,
)

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "github"
SECRET = "s3cret"
JOB = JobSpec(command=["python", "x.py"])
BASE = "Codertocat/Hello-World"
SPEC_URL = "https://github.com/Codertocat/Hello-World.git"


def hello(forks: str = "ignore") -> PipelineSpec:
    return PipelineSpec.model_validate(
        {
            "name": "hello",
            "source": SourceSpec(repo=BASE, branches=["master"]),
            "train": JOB,
            "evaluate": {"command": ["python", "x.py"]},
            "endpoint": "hello",
            "pull_requests": {"forks": forks},
        }
    )


def fork_pr(action: str = "opened", head_sha: str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821", **top: Any) -> dict:
    """GitHub's own pull_request sample, with its head in a fork owned by someone else."""
    payload = copy.deepcopy(json.loads((SAMPLES / "pull_request.opened.1.json").read_text()))
    head = payload["pull_request"]["head"]
    head["sha"] = head_sha
    head["repo"] = {**head["repo"], "full_name": "mallory/Hello-World", "clone_url": "file:///tmp/evil.git"}
    head["repo"]["owner"] = {**head["repo"]["owner"], "login": "mallory"}
    payload.update(action=action, **top)
    return payload


def labeled(login: str, label: str = "relaunch:approved", head_sha: str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"):
    sender = {"login": login, "id": 7, "type": "User"}
    return fork_pr("labeled", head_sha, label={"id": 1, "name": label, "color": "f29513"}, sender=sender)


class FakePermissions:
    """Who has which permission on the base repository, as GitHub's API would answer."""

    def __init__(self, known: dict[str, str]) -> None:
        self.known = known
        self.asked: list[tuple[str, str]] = []

    def permission(self, repo: str, login: str) -> str:
        self.asked.append((repo, login))
        return self.known.get(login, "none")


class World:
    def __init__(self, forks: str = "on_approval", people: dict[str, str] | None = None) -> None:
        self.spec = hello(forks)
        self.store, self.bus = FakeStore(), FakeBus()
        self.builder, self.backend, self.notifier = FakeBuilder(), FakeBackend(), FakeNotifier()
        self.permissions = FakePermissions(people or {})
        self.ingest = IngestService(self.store, self.bus, lambda: {"hello": self.spec})
        deps = Deps(
            self.store,
            self.builder,
            self.backend,
            FakeBlobs(),
            FakeRegistry(),
            FakeEndpoint(),
            self.notifier,
            lambda: {"hello": self.spec},
            "/art",
            permissions=self.permissions,
        )
        self.orch = Orchestrator(deps)

    def deliver(self, payload: dict, delivery: str) -> dict[str, Any]:
        body = json.dumps(payload).encode()
        headers = github_headers("pull_request", body, SECRET, delivery)
        reply = self.ingest.github(parse_github(headers, body, secret=SECRET), headers, body)
        return reply.body

    def drain(self) -> None:
        """Hand every published command to the orchestrator, as the bus would."""
        while self.bus.messages:
            _, data, _ = self.bus.messages.pop(0)
            self.orch.handle(parse_command(data))

    def only_run(self) -> PipelineRun:
        (run,) = self.store.runs.values()
        return run


def test_a_fork_pull_request_starts_no_run_by_default() -> None:
    world = World(forks="ignore")
    body = world.deliver(fork_pr(), "d-1")
    assert body["outcome"] == "skipped" and world.store.runs == {}
    assert "fork" in body["skipped"]["hello"] and "pull_requests.forks: on_approval" in body["skipped"]["hello"]
    assert "fork" in world.store.deliveries["github:d-1"].outcome
    assert world.builder.builds == [] and world.backend.submitted == {}


def test_a_same_repository_pull_request_runs_as_before_from_the_spec_url() -> None:
    world = World(forks="ignore")
    body = world.deliver(json.loads((SAMPLES / "pull_request.opened.1.json").read_text()), "d-1")
    run = world.store.runs[body["runs"][0]]
    assert run.trigger.clone_url == SPEC_URL and run.trigger.pr_number == 2 and not run.trigger.from_fork
    world.drain()
    assert world.store.runs[run.id].state is RunState.TRAINING


def test_with_on_approval_the_run_waits_and_nothing_is_built_or_submitted() -> None:
    world = World()
    world.deliver(fork_pr(), "d-1")
    world.drain()
    run = world.only_run()
    assert run.state is RunState.AWAITING_APPROVAL
    assert world.builder.builds == [] and world.backend.submitted == {}
    trigger = run.trigger
    assert trigger.clone_url == SPEC_URL and trigger.head_repo == "mallory/Hello-World" and trigger.from_fork
    assert trigger.ref == "refs/pull/2/head" and trigger.base_sha == "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
    (note,) = [n for n in world.notifier.sent if n.run_id == run.id]
    assert note.state == "pending" and note.conclusion == "neutral"
    assert note.report_markdown is not None
    assert "relaunch:approved" in (note.report_markdown or "") and f"relaunch approve {run.id}" in note.report_markdown


@pytest.mark.parametrize("permission", ["read", "triage", "none"])
def test_a_label_by_someone_without_write_access_does_not_approve(permission: str) -> None:
    world = World(people={"reader": permission})
    world.deliver(fork_pr(), "d-1")
    world.drain()
    world.deliver(labeled("reader"), "d-2")
    world.drain()
    run = world.only_run()
    assert run.state is RunState.AWAITING_APPROVAL and world.builder.builds == []
    assert world.permissions.asked == [(BASE, "reader")]
    assert any("refused" in e.message and "reader" in e.message for e in world.store.timeline(run.id))


@pytest.mark.parametrize("permission", ["write", "maintain", "admin"])
def test_a_label_by_someone_with_write_access_approves_that_head(permission: str) -> None:
    world = World(people={"maintainer": permission})
    world.deliver(fork_pr(), "d-1")
    world.drain()
    world.deliver(labeled("maintainer"), "d-2")
    world.drain()
    run = world.only_run()
    assert run.state is RunState.TRAINING and f"{run.id}:build" in world.builder.builds
    approval = world.store.get_effect(run.id, "approval")
    assert approval is not None and approval["by"] == "maintainer" and approval["sha"] == run.trigger.sha
    assert approval["via"] == "label relaunch:approved" and approval["permission"] == permission


def test_another_label_or_a_label_for_another_head_approves_nothing() -> None:
    world = World(people={"maintainer": "admin"})
    world.deliver(fork_pr(), "d-1")
    world.drain()
    assert world.deliver(labeled("maintainer", label="bug"), "d-2")["outcome"] == "ignored"
    world.deliver(labeled("maintainer", head_sha="a" * 40), "d-3")  # the head moved on since
    world.drain()
    assert world.only_run().state is RunState.AWAITING_APPROVAL and world.builder.builds == []


def test_the_payload_never_says_who_may_approve() -> None:
    """author_association OWNER in the payload is ignored: GitHub's API is asked, and it knows no such writer."""
    world = World(people={})
    world.deliver(fork_pr(), "d-1")
    world.drain()
    payload = labeled("mallory")
    payload["pull_request"]["author_association"] = "OWNER"
    world.deliver(payload, "d-2")
    world.drain()
    assert world.only_run().state is RunState.AWAITING_APPROVAL


def test_relaunch_approve_moves_the_run_on_and_records_who() -> None:
    world = World()
    world.deliver(fork_pr(), "d-1")
    world.drain()
    run = world.only_run()
    approve_by_operator(world.store, run.id, by="alice", at=1.0)
    world.orch.advance(world.store.runs[run.id])
    assert world.store.runs[run.id].state is RunState.TRAINING
    approval = world.store.get_effect(run.id, "approval")
    assert approval is not None
    assert approval == {**approval, "by": "alice", "via": "cli", "sha": run.trigger.sha}


def test_relaunch_approve_refuses_a_run_that_is_not_awaiting_approval() -> None:
    world = World()
    body = world.deliver(json.loads((SAMPLES / "pull_request.opened.1.json").read_text()), "d-1")
    with pytest.raises(NotAwaiting, match="needs no approval"):
        approve_by_operator(world.store, body["runs"][0], by="alice", at=1.0)
    with pytest.raises(NotAwaiting, match="no run"):
        approve_by_operator(world.store, "hello-nope", by="alice", at=1.0)


def test_a_new_push_to_the_fork_withdraws_the_approval() -> None:
    world = World(people={"maintainer": "write"})
    world.builder.pending = True  # the approved older head is still building
    world.deliver(fork_pr(), "d-1")
    world.drain()
    world.deliver(labeled("maintainer"), "d-2")
    world.drain()
    (older,) = world.store.runs.values()
    assert world.store.runs[older.id].state is RunState.BUILDING
    world.deliver(fork_pr("synchronize", head_sha="b" * 40), "d-3")
    world.drain()
    newer = next(r for r in world.store.runs.values() if r.id != older.id)
    assert world.store.runs[older.id].state is RunState.SUPERSEDED
    assert newer.state is RunState.AWAITING_APPROVAL and world.store.get_effect(newer.id, "approval") is None


def test_a_new_push_supersedes_an_older_head_still_awaiting_approval() -> None:
    world = World()
    world.deliver(fork_pr(), "d-1")
    world.drain()
    world.deliver(fork_pr("synchronize", head_sha="b" * 40), "d-2")
    world.drain()
    states = sorted((r.trigger.sha, r.state) for r in world.store.runs.values())
    assert states == [
        ("b" * 40, RunState.AWAITING_APPROVAL),
        (fork_pr()["pull_request"]["head"]["sha"], RunState.SUPERSEDED),
    ]


def test_a_fork_run_never_builds_without_an_approval_even_if_the_spec_changed() -> None:
    world = World()
    world.deliver(fork_pr(), "d-1")
    world.spec = hello("ignore")
    world.drain()
    assert world.only_run().state is RunState.AWAITING_APPROVAL and world.builder.builds == []


# -- the parser ------------------------------------------------------------------------------------------------


def parse(payload: dict) -> Any:
    body = json.dumps(payload).encode()
    return parse_github(github_headers("pull_request", body, SECRET, "d"), body, secret=SECRET)


def test_the_parser_reads_the_fork_base_sender_and_label() -> None:
    event = parse(labeled("maintainer"))
    assert event.head_repo == "mallory/Hello-World" and event.repo == BASE and event.number == 2
    assert event.base_sha == "f95f852bd8fca8fcc58a9a2d6c842781e32a215e" and event.sender == "maintainer"
    assert event.label == "relaunch:approved"
    deleted = fork_pr()
    deleted["pull_request"]["head"]["repo"] = None
    assert parse(deleted).head_repo is None


@pytest.mark.parametrize(
    ("where", "value", "field"),
    [
        ("head.sha", "--orphan=pwned", "pull_request.head.sha"),
        ("base.sha", "f95f852", "pull_request.base.sha"),
        ("head.ref", "-x", "pull_request.head.ref"),
        ("base.ref", "a..b", "pull_request.base.ref"),
        ("head.repo.full_name", "../../etc", "pull_request.head.repo.full_name"),
    ],
)
def test_a_bad_sha_ref_or_repo_in_a_pull_request_is_a_422_naming_the_field(where: str, value: str, field: str) -> None:
    payload = fork_pr()
    node = payload["pull_request"]
    *path, last = where.split(".")
    for key in path:
        node = node[key]
    node[last] = value
    with pytest.raises(Unprocessable) as info:
        parse(payload)
    assert info.value.field == field


@pytest.mark.parametrize("login", ["../admin", "a b", "\ud800", "x" * 80])
def test_a_bad_sender_login_is_a_422(login: str) -> None:
    with pytest.raises(Unprocessable) as info:
        parse(labeled(login))
    assert info.value.field == "sender.login"


def test_the_pull_requests_policy_defaults_to_ignore_and_refuses_typos() -> None:
    assert hello().pull_requests == PullRequestPolicy(forks="ignore", approval_label="relaunch:approved")
    with pytest.raises(ValueError, match="forks"):
        PullRequestPolicy.model_validate({"forks": "always"})
    with pytest.raises(ValueError, match="fork"):
        PullRequestPolicy.model_validate({"fork": "on_approval"})


def test_the_approval_request_is_published_for_the_orchestrator_to_check() -> None:
    world = World()
    world.deliver(labeled("maintainer"), "d-2")
    ((topic, data, _),) = world.bus.messages
    assert topic == COMMANDS_TOPIC and data["type"] == "label_approval" and data["login"] == "maintainer"
    assert world.store.deliveries["github:d-2"].outcome.startswith("approval requested")
    assert world.store.runs == {}
