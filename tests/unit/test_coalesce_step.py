"""RECEIVED wired end to end with fakes: supersede, duplicates, waiting, debounce, races, orphan jobs, the ledger."""

from __future__ import annotations

import time

import pytest

from relaunch.domain.commands import StartRun
from relaunch.domain.model import PipelineRun, RunState
from relaunch.domain.ports import ConflictError
from tests.fakes import FakeStore
from tests.unit.test_orchestrator import SPEC, World

S = RunState
MAIN = "refs/heads/main"


def push(w: World, n: int, sha: str | None = None, kind: str = "push", age_s: float = 0.0) -> PipelineRun:
    run = w.new_run(n, ref=MAIN, sha=sha or str(n % 10) * 40, kind=kind)
    run = run.model_copy(update={"created_at": time.time() - 1000 + n - age_s})  # arrival order = n
    w.store.runs[run.id] = run
    return run


def test_newer_push_supersedes_a_training_run_cancels_its_job_reports_and_records_cost() -> None:
    w = World()
    first = push(w, 1)
    assert w.start(first).state is S.TRAINING
    job = w.store.runs[first.id].jobs["train"]

    second = w.start(push(w, 2))

    assert second.state is S.TRAINING
    old = w.store.runs[first.id]
    assert (old.state, old.reason) == (S.SUPERSEDED, "superseded by 2222222")
    assert w.backend.states[job].state == "cancelled"
    posted = {(n.stage, n.state, n.description) for n in w.notifier.sent if n.run_id == first.id}
    assert {("train", "error", "superseded by 2222222"), ("gate", "error", "superseded by 2222222")} <= posted
    cost = w.store.get_effect(first.id, "cost")
    assert cost is not None and cost["outcome"] == "superseded" and cost["train_s"] == pytest.approx(2.0)


def test_redundant_run_of_the_same_commit_is_closed_and_the_original_goes_on() -> None:
    w = World()
    first = push(w, 1, sha="a" * 40)
    w.start(first)
    again = w.start(push(w, 2, sha="a" * 40))
    assert again.state is S.SUPERSEDED and first.id in again.reason
    assert w.store.runs[first.id].state is S.TRAINING
    assert len(w.backend.submitted) == 1


def test_manual_run_waits_for_the_lane_and_goes_on_when_it_ends() -> None:
    w = World()
    first = push(w, 1)
    w.start(first)
    manual = push(w, 2, kind="manual")
    held = w.start(manual)
    assert (held.state, held.waiting_for) == (S.RECEIVED, first.id)
    version = held.version
    assert w.start(manual).version == version  # a repeated nudge writes nothing
    assert w.store.runs[first.id].state is S.TRAINING  # a manual run supersedes nothing

    w.finish(first, "train", "failed", message="exited with code 1")
    woken = w.store.runs[manual.id]
    assert woken.state is S.TRAINING and woken.waiting_for is None


def test_debounced_push_is_held_then_superseded_before_it_costs_a_build() -> None:
    spec = SPEC.model_copy(update={"coalesce": SPEC.coalesce.model_copy(update={"debounce_s": 600.0})})
    w = World()
    w.orch.d.specs = lambda: {"digits": spec}
    fresh = push(w, 1).model_copy(update={"created_at": time.time()})
    w.store.runs[fresh.id] = fresh
    held = w.start(fresh)
    assert held.state is S.RECEIVED and held.hold_until == pytest.approx(fresh.created_at + 600)
    newer = push(w, 2).model_copy(update={"created_at": time.time() + 1})
    w.store.runs[newer.id] = newer
    assert w.start(newer).state is S.RECEIVED
    assert w.store.runs[fresh.id].state is S.SUPERSEDED
    assert w.builder.builds == []

    later = World()
    later.orch.d.specs = lambda: {"digits": spec}
    old_enough = push(later, 3, age_s=1200)  # its debounce window is over: it builds
    assert later.start(old_enough).state is S.TRAINING


def test_a_run_whose_lane_already_has_a_newer_push_is_superseded_before_it_builds() -> None:
    w = World()
    older, newer = push(w, 1), push(w, 2)  # a burst: both arrived before either was started
    closed = w.start(older)
    assert newer.trigger.sha is not None
    assert closed.state is S.SUPERSEDED and closed.reason == f"superseded by {newer.trigger.sha[:7]}"
    assert w.builder.builds == [] and w.backend.submitted == {}
    assert w.start(newer).state is S.TRAINING


def test_supersession_retries_when_the_older_run_moves_on_meanwhile() -> None:
    w = World()
    first = push(w, 1)
    w.start(first)
    store = w.store
    real_save = FakeStore.save_run
    raced = {"done": False}

    def save_run(run: PipelineRun, entries=()):  # type: ignore[no-untyped-def]
        if run.id == first.id and run.state is S.SUPERSEDED and not raced["done"]:
            raced["done"] = True  # the older run's own handler saves first, with a new job
            current = store.runs[first.id]
            real_save(store, current.model_copy(update={"jobs": {**current.jobs, "extra": "job-extra"}}))
            w.backend.submit(w.backend.submitted[current.jobs["train"]].model_copy(update={"key": "extra"}))
        return real_save(store, run, entries)

    store.save_run = save_run  # type: ignore[method-assign]
    w.start(push(w, 2))
    assert store.runs[first.id].state is S.SUPERSEDED
    assert w.backend.states["job-extra"].state == "cancelled"


def test_newest_wins_an_older_run_never_supersedes_a_newer_one() -> None:
    w = World()
    older, newer = push(w, 1), push(w, 2)
    w.start(newer)
    assert w.orch._coalescer.supersede(newer.id, "superseded by 1111111", by=older) is None
    assert w.store.runs[newer.id].state is S.TRAINING


def test_a_job_submitted_by_a_run_superseded_meanwhile_is_cancelled() -> None:
    w = World()
    first = push(w, 1)

    class RacingBuilder(type(w.builder)):  # type: ignore[misc]
        def build(self, run, key):  # type: ignore[no-untyped-def]
            result = super().build(run, key)
            if run.id == first.id:  # while the first run builds, the second arrives and supersedes it
                w.orch._coalescer.supersede(first.id, "superseded by 2222222", by=push(w, 2))
            return result

    w.builder.__class__ = RacingBuilder
    with pytest.raises(ConflictError):
        w.start(first)
    orphan = f"job-{first.id}:train"
    assert w.backend.states[orphan].state == "cancelled"
    redelivered = w.orch.handle(StartRun(run_id=first.id))
    assert redelivered is not None
    assert redelivered.state is S.SUPERSEDED  # the redelivered command: nothing to do


def test_a_path_filtered_push_is_recorded_in_the_ledger_once() -> None:
    from relaunch.domain.commands import ReportSkip

    w = World()
    skip = ReportSkip(run_id="digits-x", pipeline="digits", repo="o/r", sha="a" * 40, description="skipped")
    w.orch.handle(skip)
    w.orch.handle(skip)
    assert [e["outcome"] for e in w.store.list_effects("cost")] == ["skipped"]


def pull_request(w: World, n: int, number: int, sha: str, head_ref: str = "refs/heads/patch-1") -> PipelineRun:
    run = w.new_run(
        n,
        kind="pull_request",
        ref=head_ref,
        sha=sha,
        evaluate_only=True,
        pr_number=number,
        base_sha="b" * 40,
        head_repo="relaunch-demo/digits",
    )
    run = run.model_copy(update={"created_at": time.time() - 1000 + n})
    w.store.runs[run.id] = run
    return run


def test_two_synchronize_deliveries_of_one_pull_request_head_train_once() -> None:
    w = World()
    first = w.start(pull_request(w, 1, 7, "a" * 40))
    again = w.start(pull_request(w, 2, 7, "a" * 40))
    assert again.state is S.SUPERSEDED and first.id in again.reason
    assert [r.step for r in w.backend.submitted.values()] == ["train"]


def test_pull_requests_with_the_same_head_branch_name_do_not_cancel_each_other() -> None:
    w = World()
    first = w.start(pull_request(w, 1, 7, "a" * 40))
    other = w.start(pull_request(w, 2, 8, "c" * 40))  # another PR whose head branch is also named patch-1
    assert w.store.runs[first.id].state is not S.SUPERSEDED and other.state is not S.SUPERSEDED


@pytest.mark.parametrize("first", ["manual", "push"])
def test_one_snapshot_of_the_lane_can_never_close_every_run_of_a_commit(first: str) -> None:
    """The issue's forced interleaving: both runs decide from one `active_runs` snapshot taken before either moved."""
    w = World()
    manual = push(w, 1, sha="c" * 40, kind="manual")
    pushed = push(w, 2, sha="c" * 40)
    snapshot = w.store.active_runs("digits")
    w.store.active_runs = lambda pipeline: [r for r in snapshot if r.pipeline == pipeline]  # type: ignore[method-assign]
    order = [manual, pushed] if first == "manual" else [pushed, manual]
    for run in order:
        w.start(run)
    states = {w.store.runs[r.id].state for r in (manual, pushed)}
    assert S.TRAINING in states, {r.id: (w.store.runs[r.id].state, w.store.runs[r.id].reason) for r in order}
    assert len(w.backend.submitted) == 1


def test_a_late_older_push_waits_for_a_newer_manual_run_instead_of_building_beside_it() -> None:
    w = World()
    manual = push(w, 2, sha="d" * 40, kind="manual")
    assert w.start(manual).state is S.TRAINING
    late = w.start(push(w, 1, sha="e" * 40))  # delivered late: older than the manual run that already builds
    assert (late.state, late.waiting_for) == (S.RECEIVED, manual.id)
    assert len(w.backend.submitted) == 1
