"""`gate.approval: required`: a passed run waits for a person, who approves or rejects it (or the wait expires)."""

from __future__ import annotations

from typing import Any

import pytest

from relaunch.domain.approval import expiry_reason, waiting_for_promotion
from relaunch.domain.commands import JobFinished, StartRun
from relaunch.domain.model import Delivery, PipelineRun, RunState, Trigger
from relaunch.domain.reporting import commit_status, worth_announcing
from relaunch.domain.spec import GatePolicy, PipelineSpec
from relaunch.service.approval_step import NotAwaiting, approve_by_operator, reject_by_operator
from relaunch.service.orchestrator import Deps, Orchestrator
from relaunch.service.reconcile import ReconcileService
from tests.fakes import FakeBackend, FakeBlobs, FakeBuilder, FakeEndpoint, FakeNotifier, FakeRegistry, FakeStore
from tests.unit.test_orchestrator import GOOD, SPEC

S = RunState
BAD = {"accuracy": 0.80, "macro_f1": 0.79}


def gated_spec(**gate: Any) -> PipelineSpec:
    rule = {"approval": "required", **gate}
    return SPEC.model_copy(update={"gate": GatePolicy.model_validate({**SPEC.gate.model_dump(), **rule})})


class World:
    def __init__(self, **gate: Any) -> None:
        self.now = 1000.0
        self.spec = gated_spec(**gate)
        self.store, self.backend, self.blobs = FakeStore(), FakeBackend(), FakeBlobs()
        self.registry, self.endpoint, self.notifier = FakeRegistry(), FakeEndpoint(), FakeNotifier()
        self.looks: list[tuple[str, float]] = []

        def look_at(run_id: str, at: float) -> bool:
            self.looks.append((run_id, at))
            return True

        deps = Deps(
            self.store,
            FakeBuilder(),
            self.backend,
            self.blobs,
            self.registry,
            self.endpoint,
            self.notifier,
            lambda: {"digits": self.spec},
            "/art",
            clock=lambda: self.now,
            look_at=look_at,
        )
        self.orch = Orchestrator(deps)

    def run_to_gate(self, n: int, metrics: dict[str, float] = GOOD, **trigger: Any) -> PipelineRun:
        fields = {"kind": "push", "repo": "relaunch-demo/digits", "sha": f"{n:040d}", "ref": "refs/heads/main"}
        run = PipelineRun(
            id=f"digits-{n}",
            pipeline="digits",
            trigger=Trigger.model_validate({**fields, "delivery_key": f"d{n}", **trigger}),
            created_at=float(n),
        )
        self.store.record_delivery(Delivery(key=f"d{n}", source="github"), [run])
        self.orch.handle(StartRun(run_id=run.id))
        self.finish(run.id, "train")
        self.blobs.write_eval(f"/art/runs/{run.id}/evaluation", metrics, None, None)
        return self.finish(run.id, "evaluate")

    def finish(self, run_id: str, step: str) -> PipelineRun:
        job = self.store.runs[run_id].jobs[step]
        self.backend.finish(job)
        moved = self.orch.handle(JobFinished(run_id=run_id, step=step, job_id=job, state="succeeded"))  # type: ignore[arg-type]
        assert moved is not None
        return moved

    def approvals(self, run_id: str) -> list[tuple[str, str]]:
        return [(n.state, n.description) for n in self.notifier.sent if n.stage == "approval" and n.run_id == run_id]


# -- the spec --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "seconds"), [("72h", 259200.0), ("90m", 5400.0), ("2d", 172800.0), (3600, 3600.0)])
def test_the_approval_timeout_reads_hours_minutes_days_or_seconds(given: object, seconds: float) -> None:
    assert GatePolicy.model_validate({"approval": "required", "approval_timeout": given}).approval_timeout == seconds


@pytest.mark.parametrize("given", ["72 hours", "-1h", 0, True, "h", "1e9d", "nan"])
def test_a_bad_approval_timeout_is_refused_naming_the_field(given: object) -> None:
    with pytest.raises(ValueError, match="approval_timeout"):
        GatePolicy.model_validate({"approval": "required", "approval_timeout": given})


def test_approval_is_off_by_default_and_a_typo_is_refused() -> None:
    assert GatePolicy().approval == "none" and GatePolicy().approval_timeout is None
    with pytest.raises(ValueError, match="approval"):
        GatePolicy.model_validate({"approval": "yes"})


def test_the_expiry_reason_says_how_long_in_words() -> None:
    assert expiry_reason(259200.0) == "approval expired after 72 h"
    assert expiry_reason(5400.0) == "approval expired after 90 min"
    assert expiry_reason(42.0) == "approval expired after 42 s"


# -- the wait ----------------------------------------------------------------------------------------------------


def test_a_run_that_passes_the_gate_waits_for_approval_instead_of_rolling_out() -> None:
    w = World()
    run = w.run_to_gate(1)
    assert run.state is S.AWAITING_APPROVAL and run.awaiting == "promotion"
    assert w.registry.versions == {} and w.endpoint.deployed == {}
    states = [e.data["to"] for e in w.store.timeline(run.id) if e.kind == "state"]
    assert states[-2:] == ["gated", "awaiting_approval"]
    assert w.approvals(run.id) == [("pending", "waiting for approval by a maintainer")]
    assert commit_status(w.notifier.sent[-1])["context"] == "relaunch/approval"


def test_a_failing_gate_still_rejects_without_a_wait() -> None:
    w = World()
    run = w.run_to_gate(1, BAD)
    assert run.state is S.REJECTED and w.approvals(run.id) == []


def test_an_evaluation_only_run_never_waits() -> None:
    w = World()
    pr: dict[str, Any] = {"pr_number": 3, "head_repo": "relaunch-demo/digits", "base_sha": "b" * 40}
    run = w.run_to_gate(1, kind="pull_request", evaluate_only=True, **pr)
    assert run.state is S.EVALUATED


def test_the_operator_approves_and_the_run_rolls_out_saying_who() -> None:
    w = World()
    run = w.run_to_gate(1)
    approve_by_operator(w.store, run.id, by="alice", at=w.now)
    done = w.orch.advance(w.store.runs[run.id])
    assert done.state is S.PROMOTED and w.endpoint.deployed["digits"] == {"v1": 100}
    ((state, said),) = [a for a in w.approvals(run.id) if a[0] != "pending"]
    assert state == "success" and said.startswith("approved by alice (cli)")
    assert worth_announcing(next(n for n in w.notifier.sent if n.stage == "approval" and n.state == "success"))
    assert any(e.kind == "approval" and "alice" in e.message for e in w.store.timeline(run.id))


def test_the_operator_rejects_with_a_reason_and_nothing_rolls_out() -> None:
    w = World()
    run = w.run_to_gate(1)
    reject_by_operator(w.store, run.id, by="bob", reason="not before the demo", at=w.now)
    done = w.orch.advance(w.store.runs[run.id])
    assert done.state is S.REJECTED and done.reason == "rejected by bob (cli): not before the demo"
    assert w.endpoint.deployed == {} and w.registry.versions == {}
    assert ("failure", "rejected by bob (cli): not before the demo") in w.approvals(run.id)


def test_the_first_verdict_stands() -> None:
    w = World()
    run = w.run_to_gate(1)
    approve_by_operator(w.store, run.id, by="alice", at=w.now)
    with pytest.raises(NotAwaiting, match="already approved by alice"):
        reject_by_operator(w.store, run.id, by="bob", reason="no", at=w.now)


def test_an_approval_is_refused_for_a_run_that_does_not_wait() -> None:
    w = World()
    run = w.run_to_gate(1, BAD)
    with pytest.raises(NotAwaiting, match="rejected, not awaiting approval"):
        approve_by_operator(w.store, run.id, by="alice", at=w.now)


def test_a_champion_promoted_meanwhile_voids_the_verdict_on_approval() -> None:
    w = World()
    run = w.run_to_gate(1)
    w.registry.register("digits", "other", "/m", GOOD)
    w.registry.set_champion("digits", "v1")
    approve_by_operator(w.store, run.id, by="alice", at=w.now)
    done = w.orch.advance(w.store.runs[run.id])
    assert done.state is S.REJECTED and "champion changed since evaluation" in done.reason


def test_an_approval_expires_and_a_look_is_scheduled_at_its_deadline() -> None:
    w = World(approval_timeout="72h")
    run = w.run_to_gate(1)
    deadline = w.now + 72 * 3600
    assert w.store.runs[run.id].approval_deadline == deadline and (run.id, deadline) in w.looks
    w.now = deadline - 1
    assert w.orch.advance(w.store.runs[run.id]).state is S.AWAITING_APPROVAL
    w.now = deadline
    done = w.orch.advance(w.store.runs[run.id])
    assert done.state is S.REJECTED and done.reason == "approval expired after 72 h"
    assert ("failure", "approval expired after 72 h") in w.approvals(run.id)


def test_reconcile_finds_an_expired_wait() -> None:
    w = World(approval_timeout=60)
    run = w.run_to_gate(1)
    w.now += 3600
    ReconcileService.over(w.orch, clock=lambda: w.now).run()
    assert w.store.runs[run.id].state is S.REJECTED


# -- supersession ------------------------------------------------------------------------------------------------


def test_a_newer_push_does_not_supersede_a_waiting_run_until_it_passes_the_gate() -> None:
    w = World()
    older = w.run_to_gate(1)
    failing = w.run_to_gate(2, BAD)
    assert failing.state is S.REJECTED and w.store.runs[older.id].state is S.AWAITING_APPROVAL
    newer = w.run_to_gate(3)
    assert newer.state is S.AWAITING_APPROVAL
    gone = w.store.runs[older.id]
    assert gone.state is S.SUPERSEDED and gone.reason.startswith("superseded by 0000000: a newer run passed the gate")
    assert ("error", gone.reason) in w.approvals(older.id)


def test_waiting_for_promotion_matches_repository_and_commit() -> None:
    w = World()
    run = w.run_to_gate(1)
    runs = w.store.active_runs("digits")
    assert waiting_for_promotion(runs, "RELAUNCH-DEMO/digits", {run.trigger.sha or ""}) == [w.store.runs[run.id]]
    assert waiting_for_promotion(runs, "relaunch-demo/digits", {"f" * 40}) == []
    assert waiting_for_promotion(runs, "mallory/digits", {run.trigger.sha or ""}) == []
