"""Coalescing: per pipeline and lane (a branch, or a pull request's head) at most one training at a time. Pure.

The policy, decided here:
- A run's *lane* is its pipeline plus the branch it builds: `refs/heads/<b>` for pushes and for manual, drift and
  schedule runs that name a ref; for a PR run, its repository and number (`owner/name#<n>`), never its head branch's
  name, which two PRs (a fork's `patch-1` and another's) may share. PR runs never share a lane with branch runs, so a
  PR never cancels the branch's training, nor the other way round. PR runs train (they are evaluation-only only in
  that they are never promoted), so a PR's new head supersedes its older one and a redelivered head is redundant.
- Only a *push* (or a PR update) supersedes: it makes every older run of its lane that has not reached `gated`
  pointless, whatever started that run (push, manual, drift, schedule), since the new run trains newer code on the
  same or newer data. Manual, drift and schedule runs never supersede anything: they were asked for explicitly (drift
  has its own cooldown) and wait for the lane's active run instead.
- A run whose lane already has a newer push waiting is superseded by it before it builds (in a burst, only the
  newest push builds and trains).
- Runs at or past `gated` are never superseded (their training is done; stopping a rollout is a rollback's job).
- W&B runs (an artifact to evaluate) train nothing and are left alone both ways.
- A new run for a commit an active run of its lane already builds is the redundant one (a redelivered or re-pushed
  SHA): it is superseded by the older run instead.
- "Newer" is arrival order (`created_at`); GitHub does not guarantee delivery order, so a late delivery of an older
  push supersedes the newer run. Accepted: the lane still ends with one training, and a push is rare to arrive late.
- One atomic step per lane: each lane has a *head*, the run allowed to build, moved only by compare-and-set in the
  store (`arbitrate` decides, the step applies). A run closes itself only in favour of the live head (same commit:
  redundant) or of a newer push (the newest push is never closed this way), and only a run that took the head
  supersedes others, so no interleaving of two runs' decisions can close every run of a commit.
- Drift cooldown: a drift run *starts* the pipeline's drift cooldown if it trained (it reached `evaluating`: a
  model came out of training) or may still train (it is active). One that ended before training (a failed clone,
  build or training, a supersession) trained nothing, so the retry after the fix is not suppressed.
- Quiet before building (`quiet_until`): a push builds only once its lane has been quiet (no newer push arrived) for a
  window, so a burst of pushes trains once, its newest. The window is the spec's `debounce_s` for every push; with no
  debounce, it is `burst_quiet_s` for a push that superseded work already under way (a build or training, or a run
  itself held for quiet): a single push on a quiet lane builds at once, the second push of a burst waits for the burst
  to end, so a burst submits at most two trainings (the first push's, cancelled, and the newest's). A newer push
  restarts the window, even before its own start command is handled; a held run keeps its `hold_until` otherwise.
  Only time ends a hold: a lane pushed to more often than the window trains when its pushes pause.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from relaunch.domain.model import PipelineRun, RunState

# States whose work a newer push makes pointless: nothing past the gate (a fork's run awaiting approval included).
SUPERSEDABLE = frozenset(
    {RunState.RECEIVED, RunState.AWAITING_APPROVAL, RunState.BUILDING, RunState.TRAINING, RunState.EVALUATING}
)
SUPERSEDING_KINDS = frozenset({"push", "pull_request"})
ADMITTED = frozenset({RunState.BUILDING, RunState.TRAINING, RunState.EVALUATING})  # the lane's head let it build


def supersedable(run: PipelineRun) -> bool:
    """Whether a newer push makes the run pointless: never once past the gate (a decided run waiting to roll out)."""
    return run.state in SUPERSEDABLE and run.decision is None


@dataclass(frozen=True)
class Supersession:
    """A run to stop: cancel `jobs`, move it to `superseded`, report `reason`."""

    run_id: str
    reason: str
    jobs: tuple[str, ...] = ()
    busy: bool = False  # it had started building or was held for quiet: the lane is in a burst


def _supersession(run: PipelineRun, reason: str) -> Supersession:
    busy = run.state in ADMITTED or run.hold_until is not None
    return Supersession(run.id, reason, tuple(run.jobs.values()), busy=busy)


@dataclass(frozen=True)
class CoalescePlan:
    """What a new run means for the active runs of its lane."""

    supersede: list[Supersession] = field(default_factory=list)
    duplicate_of: str | None = None  # the new run is redundant: supersede it instead, pointing at this run
    superseded_by: str | None = None  # a newer push of the lane already arrived: this run is pointless
    wait_for: str | None = None  # the new run must not build before this run of its lane is past `evaluating`


def lane(run: PipelineRun) -> tuple[str, str, str] | None:
    """(pipeline, kind of lane, ref) the run belongs to, or None for a run that coalesces with nothing."""
    trigger = run.trigger
    if trigger.kind == "pull_request" and trigger.pr_number is not None:
        # By the PR, never by its head branch's name: two PRs (a fork's `patch-1` and another's) may share one.
        return (run.pipeline, "pr", f"{(trigger.repo or '').lower()}#{trigger.pr_number}")
    if trigger.evaluate_only or trigger.kind == "wandb" or not trigger.ref:
        return None
    if trigger.kind == "pull_request" or trigger.ref.startswith("refs/pull/"):
        return (run.pipeline, "pr", trigger.ref)
    ref = trigger.ref if trigger.ref.startswith("refs/") else f"refs/heads/{trigger.ref}"
    return (run.pipeline, "branch", ref)


def coalesce(new: PipelineRun, active: Iterable[PipelineRun]) -> CoalescePlan:
    """Which active runs the new run supersedes, or whether it is itself redundant or must wait."""
    key = lane(new)
    if key is None:
        return CoalescePlan()
    same_lane = sorted(
        (r for r in active if r.id != new.id and supersedable(r) and lane(r) == key and _older(r, new)),
        key=lambda r: (r.created_at, r.id),
    )
    newer = [
        r
        for r in active
        if r.id != new.id
        and supersedable(r)
        and r.trigger.kind in SUPERSEDING_KINDS
        and lane(r) == key
        and _older(new, r)
    ]
    if newer:  # a burst: only the newest push of the lane builds and trains
        return CoalescePlan(superseded_by=max(newer, key=lambda r: (r.created_at, r.id)).id)
    same_sha = [r for r in same_lane if new.trigger.sha and r.trigger.sha == new.trigger.sha]
    if same_sha:
        return CoalescePlan(duplicate_of=same_sha[-1].id)
    if new.trigger.kind in SUPERSEDING_KINDS:
        reason = f"superseded by {_short(new.trigger.sha)}"
        return CoalescePlan(supersede=[_supersession(r, reason) for r in same_lane])
    return CoalescePlan(wait_for=same_lane[-1].id if same_lane else None)


def duplicate_reason(original: PipelineRun) -> str:
    """The reason a redundant new run is closed with."""
    return f"superseded by {_short(original.trigger.sha)} (run {original.id} already builds this commit)"


def quiet_until(
    run: PipelineRun,
    active: Iterable[PipelineRun],
    superseded: Iterable[Supersession],
    *,
    debounce_s: float,
    burst_quiet_s: float,
    now: float,
) -> float | None:
    """When a push that holds its lane may build: once no push arrived for the window; None if it may build now.

    `superseded`: what the run just superseded. A run held before keeps its `hold_until`, unless a newer push of its
    lane (`active`, handled or not) restarts the window.
    """
    if run.trigger.kind not in SUPERSEDING_KINDS or run.state is not RunState.RECEIVED:
        return None
    held = run.hold_until
    window = debounce_s or (burst_quiet_s if held is not None or any(s.busy for s in superseded) else 0.0)
    if window <= 0:
        return None
    key = lane(run)
    pushes = (r for r in active if r.trigger.kind in SUPERSEDING_KINDS and supersedable(r) and lane(r) == key)
    restarts = [r.created_at + window for r in pushes if _older(run, r)]
    until = max([run.created_at + window if held is None else held, *restarts])
    return until if now < until else None


# Where a run stands once its training produced a model (a failed run that got there has an `evaluate` job).
TRAINED = frozenset(
    {
        RunState.EVALUATING,
        RunState.GATED,
        RunState.ROLLING_OUT,
        RunState.PROMOTED,
        RunState.REJECTED,
        RunState.ROLLED_BACK,
    }
)


def starts_cooldown(run: PipelineRun) -> bool:
    """Whether this run holds its pipeline's drift cooldown: a drift run that trained or may still train."""
    if run.trigger.kind != "drift":
        return False
    return run.state in TRAINED or "evaluate" in run.jobs or not run.state.terminal


def cooldown_start(runs: Iterable[PipelineRun]) -> float | None:
    """When the newest run holding the drift cooldown started (None: nothing holds it)."""
    return max((run.created_at for run in runs if starts_cooldown(run)), default=None)


def _older(candidate: PipelineRun, new: PipelineRun) -> bool:
    return (candidate.created_at, candidate.id) < (new.created_at, new.id)


def _short(sha: str | None) -> str:
    return (sha or "unknown")[:7]


@dataclass(frozen=True)
class LaneMove:
    """`arbitrate`'s verdict: take the lane's head (then apply `plan`), go on as its head, close, or wait."""

    action: str  # "take" | "go" | "close" | "wait"
    plan: CoalescePlan = field(default_factory=CoalescePlan)
    other: str | None = None  # close: the run this one gives way to; wait: the run it waits for


def arbitrate(new: PipelineRun, active: Iterable[PipelineRun], head: PipelineRun | None) -> LaneMove:
    """Where a received run stands in its lane, given the lane's head as the store has it (None: nobody took it)."""
    plan = coalesce(new, active)
    if lane(new) is None or (head is not None and head.id == new.id):
        return LaneMove("go", CoalescePlan())
    if plan.superseded_by is not None:  # a newer push of the lane exists: it, or a newer one, is never closed here
        return LaneMove("close", other=plan.superseded_by)
    live = head if head is not None and supersedable(head) and lane(head) == lane(new) else None
    if live is None:
        # Nobody builds the lane: take it. A duplicate_of from the snapshot is not trusted (that run may be closing
        # in our favour); a run admitted before lanes had heads is still waited for.
        admitted = next((r for r in active if r.id == plan.wait_for and r.state in ADMITTED), None)
        if admitted is not None:
            return LaneMove("wait", other=admitted.id)
        return LaneMove("take", CoalescePlan(supersede=plan.supersede))
    if new.trigger.sha and live.trigger.sha == new.trigger.sha:
        return LaneMove("close", other=live.id)  # the head builds this very commit: this run is redundant
    if new.trigger.kind in SUPERSEDING_KINDS and _older(live, new):
        supersede = plan.supersede
        if live.id not in {s.run_id for s in supersede}:
            reason = f"superseded by {_short(new.trigger.sha)}"
            supersede = [*supersede, _supersession(live, reason)]
        return LaneMove("take", CoalescePlan(supersede=supersede))
    return LaneMove("wait", other=live.id)


def lane_name(key: tuple[str, str, str] | None) -> str:
    """The store's name for a lane: pipeline, kind and ref joined."""
    return "|".join(key or ("", "", ""))
