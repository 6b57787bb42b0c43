"""Promote, reject and roll back a run by hand (the check run's buttons, the dashboard): what each does and refuses."""

from __future__ import annotations

import pytest

from relaunch.domain.commands import StartRun
from relaunch.domain.effects import Effect
from relaunch.domain.model import PipelineRun, RunState
from relaunch.domain.run_actions import offered
from relaunch.service.run_actions import ActionRefused, RunActions
from tests.unit.test_orchestrator import GOOD, World
from tests.unit.test_promotion_approval import BAD
from tests.unit.test_promotion_approval import World as GatedWorld

S = RunState


def actions(w: World | GatedWorld, clock: float = 5000.0) -> RunActions:
    registry = w.registry

    def champion(pipeline: str) -> str | None:
        held = registry.champion(pipeline)
        return held.version if held else None

    return RunActions(
        w.store,
        nudge=lambda run_id: w.orch.handle(StartRun(run_id=run_id)),
        roll_back=w.orch.roll_back,
        champion=champion,
        clock=lambda: clock,
    )


def timeline_kinds(w: World | GatedWorld, run_id: str, kind: str) -> list[str]:
    return [e.message for e in w.store.timeline(run_id) if e.kind == kind]


def gate_rejected(w: World, n: int) -> PipelineRun:
    run = w.promote(n, {"accuracy": 0.80, "macro_f1": 0.79})
    assert run.state is S.REJECTED and run.decision is not None and not run.decision.promote
    return run


# -- promote -------------------------------------------------------------------------------------------------


def test_promote_approves_a_run_waiting_for_approval_and_it_rolls_out() -> None:
    w = GatedWorld()
    run = w.run_to_gate(1)
    assert offered(run) == ("promote", "reject")
    done = actions(w).promote(run.id, by="alice", via="GitHub check run", permission="write")
    assert done.state is S.PROMOTED and w.registry.champions["digits"] == "v1"
    approvals = [e.data for e in w.store.timeline(run.id) if e.kind == "approval"]
    assert [(a["by"], a["via"], a["permission"]) for a in approvals] == [("alice", "GitHub check run", "write")]
    assert offered(done) == ("rollback",)


def test_promote_of_a_run_the_gate_rejected_is_an_override_recorded_as_such() -> None:
    w = World()
    run = gate_rejected(w, 1)
    assert offered(run) == ("promote",)
    done = actions(w).promote(run.id, by="alice", via="GitHub check run", permission="admin")
    assert done.state is S.PROMOTED and done.model_version == "v1" and done.reason == "promoted"
    assert w.endpoint.deployed["digits"] == {"v1": 100}
    (line,) = timeline_kinds(w, run.id, "override")
    assert line.startswith("gate overridden by alice (GitHub check run): the gate had said no: ")
    assert "accuracy" in line
    record = w.store.get_effect(run.id, Effect.OVERRIDE)
    assert record is not None and record["by"] == "alice" and record["permission"] == "admin" and record["at"] == 5000
    states = [e.data["to"] for e in w.store.timeline(run.id) if e.kind == "state"]
    assert states[-3:] == ["rejected", "rolling_out", "promoted"]


def test_a_second_press_of_promote_changes_nothing_and_says_why() -> None:
    w = World()
    run = gate_rejected(w, 1)
    acts = actions(w)
    acts.promote(run.id, by="alice")
    with pytest.raises(ActionRefused, match=f"run {run.id} is already promoted"):
        acts.promote(run.id, by="bob")
    assert len(timeline_kinds(w, run.id, "override")) == 1
    assert w.store.get_effect(run.id, Effect.OVERRIDE)["by"] == "alice"  # type: ignore[index]


def test_an_override_is_refused_once_the_champion_changed() -> None:
    w = World()
    old = gate_rejected(w, 1)
    w.promote(2, GOOD)  # v1 serves now; run 1 was compared with no champion at all
    with pytest.raises(ActionRefused, match="evaluated against no champion, and v1 serves now: re-run it"):
        actions(w).promote(old.id, by="alice")
    assert w.store.runs[old.id].state is S.REJECTED


def test_an_override_is_refused_when_a_newer_run_was_already_promoted() -> None:
    w = World()
    old = gate_rejected(w, 1)
    newer = w.promote(2, GOOD)
    w.registry.champions.pop("digits")  # as if the champion alias had been cleared: the newer run still stands
    with pytest.raises(ActionRefused, match=f"a newer run \\({newer.id}\\) was already promoted \\(v1\\)"):
        actions(w).promote(old.id, by="alice")


@pytest.mark.parametrize(
    ("update", "refusal"),
    [
        ({"state": S.SUPERSEDED, "reason": "superseded by abc1234"}, "is superseded: superseded by abc1234"),
        ({"state": S.FAILED, "reason": "build failed: boom"}, "is failed: build failed: boom"),
        ({"state": S.TRAINING}, "is still training: there is no verdict to promote yet"),
        ({"state": S.REJECTED, "decision": None, "reason": "approval expired"}, "was not rejected by its gate"),
    ],
)
def test_promote_refuses_runs_that_cannot_roll_out(update: dict, refusal: str) -> None:
    w = World()
    run = w.store.save_run(gate_rejected(w, 1).model_copy(update=update))
    with pytest.raises(ActionRefused, match=refusal):
        actions(w).promote(run.id, by="alice")
    assert offered(run) == ()


def test_an_evaluation_only_run_is_never_promoted() -> None:
    w = World()
    run = gate_rejected(w, 1)
    evaluated = run.model_copy(update={"trigger": run.trigger.model_copy(update={"evaluate_only": True})})
    w.store.save_run(evaluated)
    with pytest.raises(ActionRefused, match="evaluates a pull request: it is never promoted"):
        actions(w).promote(run.id, by="alice")
    assert offered(evaluated) == ()


def test_an_unknown_run_is_refused_in_one_line() -> None:
    with pytest.raises(ActionRefused, match=r"^no run 'nope\\n'$"):
        actions(World()).promote("nope\n", by="alice")


# -- reject --------------------------------------------------------------------------------------------------


def test_reject_ends_a_waiting_run_with_the_reason_and_a_second_press_is_refused() -> None:
    w = GatedWorld()
    run = w.run_to_gate(1, BAD | {"accuracy": 0.97, "macro_f1": 0.97})
    acts = actions(w)
    done = acts.reject(run.id, by="bob", reason="not before the demo", via="GitHub check run", permission="write")
    assert done.state is S.REJECTED and done.reason == "rejected by bob (GitHub check run): not before the demo"
    assert offered(done) == ()  # a person's rejection is not the gate's: nothing to override
    with pytest.raises(ActionRefused, match="is rejected: only a run waiting for approval can be rejected"):
        acts.reject(run.id, by="bob", reason="again")


# -- rollback ------------------------------------------------------------------------------------------------


def test_rollback_undoes_the_serving_run_once() -> None:
    w = World()
    w.promote(1, GOOD)
    second = w.promote(2, GOOD, champion=GOOD)
    assert second.state is S.PROMOTED and w.registry.champions["digits"] == "v2"
    acts = actions(w)
    back = acts.rollback(second.id, by="carol", via="GitHub check run", permission="write")
    assert back.id == second.id and back.state is S.ROLLED_BACK
    assert w.registry.champions["digits"] == "v1" and w.endpoint.deployed["digits"] == {"v1": 100}
    assert timeline_kinds(w, second.id, "rollback") == ["rollback asked by carol (GitHub check run, write)"]
    with pytest.raises(ActionRefused, match=f"run {second.id} is already rolled back"):
        acts.rollback(second.id, by="carol", via="GitHub check run")
    assert w.registry.champions["digits"] == "v1"  # not rolled back a second time, to nothing


def test_rollback_of_a_run_that_no_longer_serves_is_refused_with_what_does() -> None:
    w = World()
    first = w.promote(1, GOOD)
    w.promote(2, GOOD, champion=GOOD)
    with pytest.raises(ActionRefused, match=f"run {first.id}'s v1 no longer serves \\(v2 does\\): nothing to undo"):
        actions(w).rollback(first.id, by="carol")
    assert w.registry.champions["digits"] == "v2"


def test_rollback_is_refused_while_another_run_rolls_out() -> None:
    w = World()
    first = w.promote(1, GOOD)
    rolling = w.store.save_run(gate_rejected(w, 2).model_copy(update={"state": S.ROLLING_OUT}))
    with pytest.raises(ActionRefused, match=f"run {rolling.id} is rolling out now: a rollback would undo that"):
        actions(w).rollback(first.id, by="carol")


def test_rollback_of_a_run_never_promoted_is_refused() -> None:
    w = World()
    run = gate_rejected(w, 1)
    with pytest.raises(ActionRefused, match="is rejected, not promoted: there is nothing of it to roll back"):
        actions(w).rollback(run.id, by="carol")


def test_a_rollback_asked_by_someone_else_first_is_not_asked_again() -> None:
    w = World()
    w.promote(1, GOOD)
    second = w.promote(2, GOOD, champion=GOOD)
    w.store.put_effect(second.id, Effect.ROLLBACK_ASKED, {"by": "dave", "via": "dashboard"})
    with pytest.raises(ActionRefused, match="a rollback was already asked by dave \\(dashboard\\)"):
        actions(w).rollback(second.id, by="carol", via="GitHub check run")
    assert w.registry.champions["digits"] == "v2"
