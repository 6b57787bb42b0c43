"""A relaunch:approve / relaunch:reject label through the github_webhook function, signed, with the sender's
permission asked of a local api.github.com (never read from the payload) and the verdict posted back there."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from relaunch import bootstrap
from relaunch.domain.commands import parse_command
from relaunch.domain.model import Check, Decision, Delivery, PipelineRun, RunState, Trigger
from relaunch.simulate import github_headers
from tests.fakes import FakeBus
from tests.github_server import FakeGitHub, serve
from tests.integration.github.openapi import assert_conforms
from tests.integration.test_functions import client, settings
from tests.unit.test_approval_labels import MERGED, REPO, labeled

pytest.importorskip("github", reason="PyGithub is not installed")

TOKEN = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"
SPEC = """
name: digits
source: {repo: relaunch-demo/digits, branches: [main]}
train: {command: [python, train.py]}
evaluate: {command: [python, evaluate.py]}
endpoint: digits
gate: {approval: required, approval_timeout: 72h}
"""


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[bootstrap.App, FakeGitHub]]:
    specs = tmp_path / "pipelines"
    specs.mkdir()
    (specs / "digits.yaml").write_text(SPEC)
    with serve(TOKEN) as fake:
        fake.permissions.update({"maintainer": "write", "reader": "read"})
        s = settings(tmp_path, pipelines_dir=specs, github_token=SecretStr(TOKEN), github_api_url=fake.url)
        built = bootstrap.App(s, overrides={"bus": FakeBus()})
        bootstrap.use(built)
        try:
            yield built, fake
        finally:
            bootstrap.use(None)
        assert_conforms(fake.requests)


def waiting(app: bootstrap.App) -> PipelineRun:
    trigger = Trigger(kind="push", delivery_key="d-0", repo=REPO, sha=MERGED, ref="refs/heads/main")
    decision = Decision(promote=True, checks=[Check(name="floor", passed=True, detail="ok")], candidate={})
    run = PipelineRun(
        id="digits-w",
        pipeline="digits",
        trigger=trigger,
        state=RunState.AWAITING_APPROVAL,
        awaiting="promotion",
        decision=decision,
    )
    app.store.record_delivery(Delivery(key="d-0", source="github"), [run])
    return run


def label(app: bootstrap.App, name: str, login: str, delivery: str) -> None:
    body = json.dumps(labeled(name, login)).encode()
    reply = client("github_webhook").post("/", data=body, headers=github_headers("pull_request", body, "s", delivery))
    assert reply.status_code == 202, reply.get_data(as_text=True)
    bus = app.bus
    assert isinstance(bus, FakeBus)
    while bus.messages:
        _, data, _ = bus.messages.pop(0)
        app.orchestrator.handle(parse_command(data))


def approval_statuses(fake: FakeGitHub) -> list[tuple[str, str]]:
    posted = fake.bodies("POST", f"/repos/{REPO}/statuses/{MERGED}")
    return [(b["state"], b["description"]) for b in posted if b["context"] == "relaunch/approval"]


def test_a_label_by_a_reader_is_refused_and_the_commit_says_why(app: tuple[bootstrap.App, FakeGitHub]) -> None:
    built, fake = app
    run = waiting(built)
    label(built, "relaunch:approve", "reader", "l-1")
    assert ("GET", f"/repos/{REPO}/collaborators/reader/permission") in fake.calls()
    assert built.store.get_run(run.id).state is RunState.AWAITING_APPROVAL  # type: ignore[union-attr]
    ((state, said),) = approval_statuses(fake)
    assert state == "pending" and said.startswith("label relaunch:approve by reader refused: their permission")


def test_a_reject_label_by_a_writer_rejects_and_the_commit_says_who(app: tuple[bootstrap.App, FakeGitHub]) -> None:
    built, fake = app
    run = waiting(built)
    label(built, "relaunch:reject", "maintainer", "l-1")
    ended = built.store.get_run(run.id)
    assert ended is not None and ended.state is RunState.REJECTED
    assert ended.reason == "rejected by maintainer (label relaunch:reject)"
    assert approval_statuses(fake) == [("failure", "rejected by maintainer (label relaunch:reject)")]
    (entry,) = [e for e in built.store.timeline(run.id) if e.kind == "approval"]
    assert entry.data["by"] == "maintainer" and entry.data["permission"] == "write" and entry.data["at"] > 0
