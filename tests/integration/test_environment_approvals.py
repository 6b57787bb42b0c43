"""Approvals of a run waiting to enter an environment: the CLI, a PR label, a rejection, an expiry, a newer run.

The orchestrator runs on fakes; the run climbs staging then production, and production requires an approval.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from relaunch.config_files import load_spec
from relaunch.domain.commands import LabelApproval, StartRun
from relaunch.domain.model import Check, Decision, Delivery, PipelineRun, RunState, Trigger
from relaunch.domain.spec import PipelineSpec
from relaunch.service.approval_step import NotAwaiting, approve_by_operator, reject_by_operator
from relaunch.service.orchestrator import Deps, Orchestrator
from tests.fakes import FakeBackend, FakeBlobs, FakeBuilder, FakeEndpoint, FakeNotifier, FakeRegistry, FakeStore

DIGITS = load_spec(Path(__file__).resolve().parents[2] / "pipelines" / "digits.yaml")
RAW = DIGITS.model_dump(exclude={"endpoint", "rollout", "environments"})
REPO = "relaunch-demo/digits"


def climbing(gate: dict[str, Any] | None = None, **production: object) -> PipelineSpec:
    envs = [
        {"name": "staging", "endpoint": "digits-staging"},
        {"name": "production", "endpoint": "digits", **production},
    ]
    raw = {**RAW, "gate": {**RAW["gate"], **(gate or {})}}
    return PipelineSpec.model_validate({**raw, "environments": envs})


class Permissions:
    def __init__(self, known: dict[str, str]) -> None:
        self.known = known

    def permission(self, repo: str, login: str) -> str:
        return self.known.get(login, "none")


class World:
    def __init__(self, spec: PipelineSpec) -> None:
        self.now, self.spec = 1000.0, spec
        self.store, self.registry, self.endpoint = FakeStore(), FakeRegistry(), FakeEndpoint()
        self.notifier, self.looks = FakeNotifier(), list[float]()
        deps = Deps(
            self.store,
            FakeBuilder(),
            FakeBackend(),
            FakeBlobs(),
            self.registry,
            self.endpoint,
            self.notifier,
            lambda: {"digits": self.spec},
            "/art",
            permissions=Permissions({"maya": "write", "tim": "read"}),
            clock=lambda: self.now,
            look_at=self.look,
        )
        self.orch = Orchestrator(deps)

    def look(self, run_id: str, at: float) -> bool:
        self.looks.append(at)
        return True

    def gated(self, n: int) -> PipelineRun:
        trigger = Trigger(kind="push", delivery_key=f"d{n}", repo=REPO, sha=f"{n:040d}", ref="refs/heads/main")
        decision = Decision(promote=True, checks=[Check(name="floor", passed=True, detail="ok")], candidate={})
        champion = self.registry.champion("digits")
        run = PipelineRun(
            id=f"digits-{n}",
            pipeline="digits",
            trigger=trigger,
            state=RunState.GATED,
            decision=decision,
            model_uri=f"/art/runs/digits-{n}/model",
            champion_version=champion.version if champion else None,
            created_at=self.now,
        )
        self.store.record_delivery(Delivery(key=f"d{n}", source="github"), [run])
        return run

    def nudge(self, run_id: str) -> PipelineRun:
        moved = self.orch.handle(StartRun(run_id=run_id))
        assert moved is not None
        return moved

    def waiting(self, n: int) -> PipelineRun:
        run = self.nudge(self.gated(n).id)
        assert run.state is RunState.AWAITING_APPROVAL and run.awaiting == "environment:production"
        assert self.endpoint.deployed.get("digits-staging") == {f"v{n}": 100}
        return run

    def said(self) -> list[str]:
        return [n.description for n in self.notifier.sent]


def test_relaunch_approve_lets_a_run_into_the_environment_it_waits_for() -> None:
    w = World(climbing(approval="required"))
    run = w.waiting(1)
    assert any("Awaiting approval to enter production" in d for d in w.said())
    approve_by_operator(w.store, run.id, by="ada (relaunch approve)", at=w.now)
    with pytest.raises(NotAwaiting, match="already approved by ada"):
        approve_by_operator(w.store, run.id, by="bob (relaunch approve)", at=w.now)
    done = w.nudge(run.id)
    assert done.state is RunState.PROMOTED and w.endpoint.deployed["digits"] == {"v1": 100}
    production = w.store.promotions("digits", "production")[0]
    assert production.approved_by == "ada (relaunch approve)"
    lines = [e.message for e in w.store.timeline(run.id)]
    assert any(line.startswith("approved into production by ada (relaunch approve) (cli)") for line in lines)
    assert any("approved into production by ada (relaunch approve)" in d for d in w.said())  # Slack, the status


def test_relaunch_reject_ends_the_climb_where_it_waits() -> None:
    w = World(climbing(approval="required"))
    run = w.waiting(1)
    reject_by_operator(w.store, run.id, by="bob (relaunch reject)", reason="not before the demo", at=w.now)
    done = w.nudge(run.id)
    assert done.state is RunState.REJECTED
    assert done.reason == "entry into production rejected by bob (relaunch reject) (cli): not before the demo"
    assert "digits" not in w.endpoint.deployed and w.endpoint.deployed["digits-staging"] == {"v1": 100}
    assert [r.environment for r in w.store.promotions("digits")] == ["staging"]
    assert any(d.startswith("entry into production rejected by bob") for d in w.said())


def test_a_label_by_a_writer_approves_the_entry_and_one_by_a_reader_is_refused() -> None:
    w = World(climbing(approval="required"))
    run = w.waiting(1)
    label: dict[str, Any] = {"run_id": "x", "pipeline": "digits", "repo": REPO, "pr_number": 7, "sha": f"{1:040d}"}
    label.update(label="relaunch:approve", for_build=False, for_promotion=True)
    w.orch.handle(LabelApproval(**label, login="tim"))
    assert w.store.runs[run.id].state is RunState.AWAITING_APPROVAL
    done = w.orch.handle(LabelApproval(**label, login="maya"))
    assert done is not None and done.state is RunState.PROMOTED
    assert w.store.promotions("digits", "production")[0].approved_by == "maya"


def test_an_environment_wait_expires_after_its_own_timeout_or_the_gates() -> None:
    for spec, timeout in [
        (climbing(approval="required", approval_timeout="90m"), 5400.0),
        (climbing({"approval_timeout": "2h"}, approval="required"), 7200.0),
    ]:
        w = World(spec)
        run = w.waiting(1)
        assert run.approval_deadline == w.now + timeout and w.looks[-1] == w.now + timeout
        w.now += timeout - 1
        assert w.nudge(run.id).state is RunState.AWAITING_APPROVAL
        w.now += 1
        done = w.nudge(run.id)
        assert done.state is RunState.REJECTED and done.reason.startswith("approval to enter production expired after")
        assert "digits" not in w.endpoint.deployed


def test_a_newer_run_that_passes_the_gate_supersedes_a_run_waiting_to_enter_production() -> None:
    w = World(climbing(approval="required"))
    old = w.waiting(1)
    w.now += 10
    w.waiting(2)
    assert w.store.runs[old.id].state is RunState.SUPERSEDED
    with pytest.raises(NotAwaiting, match="superseded"):
        approve_by_operator(w.store, old.id, by="ada", at=w.now)


def test_the_gate_approval_and_an_environment_approval_are_two_verdicts() -> None:
    w = World(climbing({"approval": "required"}, approval="required"))
    run = w.nudge(w.gated(1).id)
    assert run.state is RunState.AWAITING_APPROVAL and run.awaiting == "promotion"
    approve_by_operator(w.store, run.id, by="ada", at=w.now)
    run = w.nudge(run.id)
    assert run.state is RunState.AWAITING_APPROVAL and run.awaiting == "environment:production"
    approve_by_operator(w.store, run.id, by="bob", at=w.now)
    assert w.nudge(run.id).state is RunState.PROMOTED
    production, staging = w.store.promotions("digits")
    assert (production.approved_by, staging.approved_by) == ("bob", "ada (at the gate)")


def test_the_first_environment_may_require_an_approval_too() -> None:
    spec = PipelineSpec.model_validate(
        {**RAW, "environments": [{"name": "staging", "endpoint": "digits-staging", "approval": "required"}]}
    )
    w = World(spec)
    run = w.nudge(w.gated(1).id)
    assert run.state is RunState.AWAITING_APPROVAL and run.awaiting == "environment:staging"
    assert w.nudge(run.id).state is RunState.AWAITING_APPROVAL  # a nudge without a verdict changes nothing
    approve_by_operator(w.store, run.id, by="ada", at=w.now)
    done = w.nudge(run.id)
    assert done.state is RunState.PROMOTED and w.endpoint.deployed["digits-staging"] == {"v1": 100}
    assert done.awaiting is None and done.approval_deadline is None
