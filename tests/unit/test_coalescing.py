"""Coalescing policy: which active runs a new run supersedes, duplicates, waits and debounce. Pure values."""

from __future__ import annotations

from relaunch.domain.coalescing import coalesce, duplicate_reason, lane, quiet_until
from relaunch.domain.model import PipelineRun, RunState, Trigger, TriggerKind


def run(
    run_id: str,
    at: float,
    sha: str,
    *,
    kind: TriggerKind = "push",
    ref: str | None = "refs/heads/main",
    state: RunState = RunState.RECEIVED,
    pipeline: str = "digits",
    jobs: dict[str, str] | None = None,
    evaluate_only: bool = False,
) -> PipelineRun:
    trigger = Trigger(kind=kind, delivery_key=f"d-{run_id}", ref=ref, sha=sha, evaluate_only=evaluate_only)
    return PipelineRun(
        id=run_id, pipeline=pipeline, trigger=trigger, state=state, created_at=at, updated_at=at, jobs=jobs or {}
    )


SHA_NEW = "abcdef0123456789"


def test_a_push_supersedes_older_queued_and_running_runs_of_its_branch() -> None:
    active = [
        run("r1", 1, "1" * 40, state=RunState.TRAINING, jobs={"train": "job-1"}),
        run("r2", 2, "2" * 40, state=RunState.BUILDING),
        run("r3", 3, "3" * 40),
    ]
    plan = coalesce(run("r4", 4, SHA_NEW), active)
    assert [(s.run_id, s.reason, s.jobs) for s in plan.supersede] == [
        ("r1", "superseded by abcdef0", ("job-1",)),
        ("r2", "superseded by abcdef0", ()),
        ("r3", "superseded by abcdef0", ()),
    ]
    assert plan.duplicate_of is None and plan.wait_for is None


def test_runs_past_the_gate_and_finished_runs_are_never_superseded() -> None:
    active = [
        run("gated", 1, "1" * 40, state=RunState.GATED),
        run("rolling", 1, "2" * 40, state=RunState.ROLLING_OUT),
        run("done", 1, "3" * 40, state=RunState.PROMOTED),
        run("evaluating", 1, "4" * 40, state=RunState.EVALUATING),
    ]
    assert [s.run_id for s in coalesce(run("new", 5, SHA_NEW), active).supersede] == ["evaluating"]


def test_other_branches_pipelines_and_pull_requests_are_left_alone() -> None:
    active = [
        run("dev", 1, "1" * 40, ref="refs/heads/dev"),
        run("other-pipeline", 1, "2" * 40, pipeline="iris"),
        run("pr", 1, "3" * 40, kind="pull_request", ref="refs/pull/7/head"),
        run("artifact", 1, "4" * 40, kind="wandb", ref=None, evaluate_only=True),
    ]
    assert coalesce(run("new", 5, SHA_NEW), active).supersede == []


def test_a_pull_request_update_supersedes_only_its_own_older_runs() -> None:
    active = [
        run("pr7-old", 1, "1" * 40, kind="pull_request", ref="refs/pull/7/head", state=RunState.TRAINING),
        run("pr8", 1, "2" * 40, kind="pull_request", ref="refs/pull/8/head"),
        run("main", 1, "3" * 40),
    ]
    plan = coalesce(run("pr7-new", 5, SHA_NEW, kind="pull_request", ref="refs/pull/7/head"), active)
    assert [s.run_id for s in plan.supersede] == ["pr7-old"]


def test_a_push_supersedes_manual_drift_and_schedule_runs_of_the_same_branch() -> None:
    active = [
        run("manual", 1, "1" * 40, kind="manual", ref="main"),
        run("drift", 2, "2" * 40, kind="drift", state=RunState.TRAINING),
        run("schedule-dev", 3, "3" * 40, kind="schedule", ref="refs/heads/dev"),
    ]
    assert [s.run_id for s in coalesce(run("push", 5, SHA_NEW), active).supersede] == ["manual", "drift"]


def test_manual_drift_and_schedule_runs_never_supersede_they_wait() -> None:
    training = run("push", 1, "1" * 40, state=RunState.TRAINING)
    for kind in ("manual", "drift", "schedule"):
        plan = coalesce(run("late", 5, SHA_NEW, kind=kind), [training])  # type: ignore[arg-type]
        assert plan.supersede == [] and plan.wait_for == "push"
    assert coalesce(run("late", 5, SHA_NEW, kind="drift"), []).wait_for is None


def test_a_newer_run_is_never_superseded_by_an_older_one() -> None:
    newer = run("newer", 10, "1" * 40)
    assert coalesce(run("older", 5, SHA_NEW), [newer]).supersede == []


def test_a_second_run_of_the_same_commit_is_the_redundant_one() -> None:
    first = run("first", 1, SHA_NEW, state=RunState.TRAINING)
    plan = coalesce(run("again", 5, SHA_NEW), [first, run("older", 0, "9" * 40)])
    assert plan.duplicate_of == "first" and plan.supersede == []
    assert duplicate_reason(first) == "superseded by abcdef0 (run first already builds this commit)"


def test_lanes_normalise_bare_branch_names() -> None:
    assert lane(run("a", 1, "x", kind="manual", ref="main")) == ("digits", "branch", "refs/heads/main")
    assert lane(run("b", 1, "x")) == ("digits", "branch", "refs/heads/main")
    assert lane(run("c", 1, "x", kind="schedule", ref=None)) is None


def test_debounce_holds_a_young_push_before_it_builds() -> None:
    def until(r: PipelineRun, debounce_s: float, now: float) -> float | None:
        return quiet_until(r, [r], [], debounce_s=debounce_s, burst_quiet_s=10, now=now)

    young = run("young", 100, SHA_NEW)
    assert until(young, debounce_s=30, now=110) == 130
    assert until(young, debounce_s=30, now=130) is None
    assert until(young, debounce_s=0, now=110) is None
    assert until(run("m", 100, SHA_NEW, kind="manual"), debounce_s=30, now=110) is None
    assert until(run("b", 100, SHA_NEW, state=RunState.BUILDING), debounce_s=30, now=110) is None


def test_a_burst_of_pushes_leaves_one_run_to_train() -> None:
    """20 pushes, each coalesced on arrival: every earlier one ends superseded, the last one alone remains."""
    active: dict[str, PipelineRun] = {}
    superseded: set[str] = set()
    for i in range(20):
        new = run(f"r{i:02d}", float(i), f"{i:040x}", state=RunState.RECEIVED)
        for s in coalesce(new, active.values()).supersede:
            superseded.add(s.run_id)
            del active[s.run_id]
        active[new.id] = new
    assert list(active) == ["r19"] and len(superseded) == 19


def test_a_run_with_a_newer_push_in_its_lane_is_superseded_by_the_newest() -> None:
    newer, newest = run("newer", 10, "1" * 40), run("newest", 20, "2" * 40)
    other_branch = run("other", 30, "3" * 40, ref="refs/heads/dev")
    assert coalesce(run("old", 5, SHA_NEW), [newer, newest, other_branch]).superseded_by == "newest"
    for kind in ("manual", "drift", "schedule"):  # a newer manual run does not make an older push pointless
        later = run("later", 10, "1" * 40, kind=kind)  # type: ignore[arg-type]
        assert coalesce(run("old", 5, SHA_NEW), [later]).superseded_by is None
    past_gate = run("gated", 10, "1" * 40, state=RunState.GATED)
    assert coalesce(run("old", 5, SHA_NEW), [past_gate]).superseded_by is None


def pr_run(run_id: str, at: float, sha: str, number: int, *, ref: str = "refs/heads/patch-1") -> PipelineRun:
    """A pull request's run as ingest makes it: evaluation-only, keyed by the PR's number, head branch as its ref."""
    trigger = Trigger(
        kind="pull_request",
        delivery_key=f"d-{run_id}",
        repo="acme/digits",
        ref=ref,
        sha=sha,
        evaluate_only=True,
        pr_number=number,
        head_repo="acme/digits",
    )
    return PipelineRun(id=run_id, pipeline="digits", trigger=trigger, created_at=at, updated_at=at)


def test_a_pull_requests_lane_is_its_repository_and_number_never_its_head_branch_name() -> None:
    assert lane(pr_run("a", 1, "1" * 40, 7)) == ("digits", "pr", "acme/digits#7")
    other_pr_same_branch_name = pr_run("b", 1, "2" * 40, 8)  # e.g. a fork's `patch-1` and another PR's `patch-1`
    assert coalesce(pr_run("new", 5, SHA_NEW, 7), [other_pr_same_branch_name]).supersede == []
    plan = coalesce(pr_run("new", 5, SHA_NEW, 7), [pr_run("old", 1, "1" * 40, 7, ref="refs/pull/7/head")])
    assert [s.run_id for s in plan.supersede] == ["old"]  # a new head of the same PR makes its old run pointless


def test_two_deliveries_of_one_pull_request_head_make_one_evaluation() -> None:
    plan = coalesce(pr_run("second", 2, "1" * 40, 7), [pr_run("first", 1, "1" * 40, 7)])
    assert plan.duplicate_of == "first" and plan.supersede == []
