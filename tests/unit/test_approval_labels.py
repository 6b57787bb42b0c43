"""The labels relaunch:approve and relaunch:reject on a pull request decide its commit's gated run, if GitHub says
the sender may write; the payload's word on who they are is never taken."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from relaunch.domain.commands import parse_command
from relaunch.domain.model import PipelineRun, RunState
from relaunch.service.ingest import IngestService
from relaunch.simulate import github_headers
from relaunch.triggers.errors import Unprocessable
from relaunch.triggers.github import parse_github
from tests.unit.test_fork_pull_requests import FakePermissions
from tests.unit.test_promotion_approval import GOOD
from tests.unit.test_promotion_approval import World as Gated

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "github" / "pull_request.labeled.1.json"
SECRET = "s3cret"
REPO = "relaunch-demo/digits"
MERGED = "c4295bd74fb0f4fda03689c3df3f2803b658fd85"  # the sample's merge_commit_sha


def labeled(label: str, login: str, *, merged: bool = True, **pr: Any) -> dict[str, Any]:
    """GitHub's own `pull_request.labeled` sample, on the watched repository, merged into main."""
    payload = copy.deepcopy(json.loads(SAMPLE.read_text()))
    payload["label"] = {**payload["label"], "name": label}
    payload["sender"] = {**payload["sender"], "login": login}
    payload["repository"]["full_name"] = REPO
    pull = payload["pull_request"]
    pull["head"]["repo"]["full_name"] = REPO
    pull["base"]["ref"] = "main"
    pull.update(merged=merged, **pr)
    return payload


class World(Gated):
    def __init__(self, people: dict[str, str]) -> None:
        super().__init__()
        self.permissions = FakePermissions(people)
        self.orch.approvals.permissions = self.permissions
        self.bus = __import__("tests.fakes", fromlist=["FakeBus"]).FakeBus()
        self.ingest = IngestService(self.store, self.bus, lambda: {"digits": self.spec})

    def waiting(self) -> PipelineRun:
        run = self.run_to_gate(1, sha=MERGED)
        assert run.state is RunState.AWAITING_APPROVAL
        return run

    def label(self, payload: dict[str, Any], delivery: str) -> dict[str, Any]:
        body = json.dumps(payload).encode()
        headers = github_headers("pull_request", body, SECRET, delivery)
        reply = self.ingest.github(parse_github(headers, body, secret=SECRET), headers, body)
        while self.bus.messages:
            _, data, _ = self.bus.messages.pop(0)
            self.orch.handle(parse_command(data))
        return dict(reply.body)


@pytest.mark.parametrize("permission", ["write", "maintain", "admin"])
def test_relaunch_approve_by_a_writer_promotes_the_merged_commit(permission: str) -> None:
    w = World({"maintainer": permission})
    run = w.waiting()
    assert w.label(labeled("relaunch:approve", "maintainer"), "d-1")["outcome"] == "approval requested"
    done = w.store.runs[run.id]
    assert done.state is RunState.PROMOTED and w.permissions.asked == [(REPO, "maintainer")]
    record = w.store.get_effect(run.id, "approval:promotion")
    assert record is not None and record["via"] == "label relaunch:approve" and record["permission"] == permission
    assert ("success", "approved by maintainer (label relaunch:approve)") in w.approvals(run.id)


def test_relaunch_reject_by_a_writer_rejects_saying_who() -> None:
    w = World({"maintainer": "write"})
    run = w.waiting()
    w.label(labeled("relaunch:reject", "maintainer"), "d-1")
    done = w.store.runs[run.id]
    assert done.state is RunState.REJECTED and done.reason == "rejected by maintainer (label relaunch:reject)"
    assert w.endpoint.deployed == {}


@pytest.mark.parametrize("permission", ["read", "triage", "none"])
def test_a_label_by_someone_who_may_not_write_is_refused_on_the_timeline_and_the_commit(permission: str) -> None:
    w = World({"reader": permission})
    run = w.waiting()
    payload = labeled("relaunch:approve", "reader")
    payload["pull_request"]["author_association"] = "OWNER"  # the payload's word: never taken
    w.label(payload, "d-1")
    assert w.store.runs[run.id].state is RunState.AWAITING_APPROVAL
    assert any(e.kind == "warning" and "refused" in e.message for e in w.store.timeline(run.id))
    (refusal,) = [d for s, d in w.approvals(run.id) if "refused" in d]
    assert refusal.startswith("label relaunch:approve by reader refused: their permission")


def test_an_unmerged_pull_request_names_its_head_not_its_test_merge_commit() -> None:
    w = World({"maintainer": "admin"})
    run = w.waiting()  # at the sample's merge_commit_sha: an unmerged PR's test merge, never a pushed commit
    w.label(labeled("relaunch:approve", "maintainer", merged=False), "d-1")
    assert w.store.runs[run.id].state is RunState.AWAITING_APPROVAL and w.permissions.asked == []


def test_another_label_or_an_unknown_sender_decides_nothing() -> None:
    w = World({"maintainer": "admin"})
    run = w.waiting()
    assert w.label(labeled("bug", "maintainer"), "d-1")["outcome"] == "ignored"
    no_sender = labeled("relaunch:approve", "maintainer")
    del no_sender["sender"]
    assert w.label(no_sender, "d-2")["outcome"] == "ignored"
    assert w.store.runs[run.id].state is RunState.AWAITING_APPROVAL


def test_a_bad_merge_commit_sha_is_a_422_naming_the_field() -> None:
    w = World({})
    body = json.dumps(labeled("relaunch:approve", "m", merge_commit_sha="--upload-pack=x")).encode()
    with pytest.raises(Unprocessable) as info:
        parse_github(github_headers("pull_request", body, SECRET, "d"), body, secret=SECRET)
    assert info.value.field == "pull_request.merge_commit_sha"
    assert w.store.runs == {} and GOOD


def test_a_newer_gated_run_of_the_lane_leaves_nothing_for_the_label() -> None:
    w = World({"maintainer": "write"})
    run = w.waiting()
    w.run_to_gate(2)
    assert w.store.runs[run.id].state is RunState.SUPERSEDED
    w.label(labeled("relaunch:approve", "maintainer"), "d-1")
    assert w.store.runs[run.id].state is RunState.SUPERSEDED and w.permissions.asked == []
