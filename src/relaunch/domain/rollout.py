"""Rollout strategies (direct, canary, blue-green) and the pure planner that picks a rollout's next action.

The orchestrator keeps a `RolloutProgress` on the run and loops:

    action = plan(strategy, progress, now, health)    # pure
    apply the action through the Endpoint port          # every action is idempotent to re-apply
    progress = advance(progress, action, now)           # pure; saved on the run

until the action is `wait` or `hold` (planned again at `until`, or sooner by the reconcile tick: health can fail
before `until`) or `done`.
A crash between applying an action and saving the progress re-plans the same action from the saved progress, and
applying it twice is harmless: deploying a deployed version is a no-op, a split is absolute, undeploying an absent
version is a no-op, a smoke test only reads.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from relaunch.domain.health import HealthLimits, assess, quiet_words
from relaunch.domain.model import EndpointHealth, RolloutPhase, RolloutProgress


class _Strict(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)


NoTraffic = Literal["promote", "hold", "roll_back"]
NO_TRAFFIC_HELP = (
    "A judged window (canary bake, blue-green rollback window) that ends with fewer than health.min_requests: "
    "promote, roll_back, or hold (keep the split and wait for traffic up to the max, then roll back)"
)


class DirectRollout(_Strict):
    """All traffic to the new version at once."""

    strategy: Literal["direct"] = "direct"


class CanaryRollout(_Strict):
    """A share of traffic for `bake_s`, judged on the endpoint's health, then all of it."""

    strategy: Literal["canary"] = "canary"
    percent: int = Field(default=10, ge=1, le=99, description="Share of traffic the new version takes while baking")
    bake_s: float = Field(default=600.0, ge=0, description="Seconds of healthy traffic before full promotion")
    max_bake_s: float | None = Field(
        default=None,
        gt=0,
        description="How long on_no_traffic: hold waits for traffic after baking began (default 4 x bake_s, >= 240 s)",
    )
    health: HealthLimits = Field(default_factory=HealthLimits)
    on_no_traffic: NoTraffic = Field(default="hold", description=NO_TRAFFIC_HELP)

    @property
    def give_up_s(self) -> float:
        return self.max_bake_s if self.max_bake_s is not None else 4 * max(self.bake_s, 60.0)


class BlueGreenRollout(_Strict):
    """Deploy beside the champion at 0%, smoke-test, switch all traffic, keep the previous version for a window."""

    strategy: Literal["blue-green"] = "blue-green"
    smoke: list[Any] | str = Field(
        description="Instances to predict as a smoke test, or a JSON file of them relative to the repo"
    )
    rollback_window_s: float = Field(default=1800.0, ge=0, description="Seconds the previous version stays deployed")
    max_window_s: float | None = Field(
        default=None,
        gt=0,
        description="How long on_no_traffic: hold keeps the window open for traffic (default 4 x the window, >= 240 s)",
    )
    health: HealthLimits = Field(default_factory=HealthLimits)
    on_no_traffic: NoTraffic = Field(default="hold", description=NO_TRAFFIC_HELP)

    @property
    def give_up_s(self) -> float:
        return self.max_window_s if self.max_window_s is not None else 4 * max(self.rollback_window_s, 60.0)

    @field_validator("smoke")
    @classmethod
    def _instances_or_relative_path(cls, value: list[Any] | str) -> list[Any] | str:
        if isinstance(value, list):
            if not value:
                raise ValueError("must list at least one instance")
            return value
        path = PurePosixPath(value)
        if not value or path.is_absolute() or ".." in path.parts:
            raise ValueError("must be a path relative to the repository (no '..')")
        return value


Rollout = Annotated[DirectRollout | CanaryRollout | BlueGreenRollout, Field(discriminator="strategy")]

ActionKind = Literal[
    "deploy", "set_traffic", "smoke_test", "promote", "wait", "hold", "undeploy_previous", "roll_back", "done"
]
WAITS: frozenset[str] = frozenset({"wait", "hold"})
Outcome = Literal["promoted", "rolled_back", "failed"]
TERMINAL_PHASES: frozenset[str] = frozenset({"done", "rolled_back", "failed"})


class RolloutAction(BaseModel):
    """The next thing to do on the endpoint, and the phase the rollout is in once it is done.

    - deploy: deploy `version` (at 0%, or 100% if the endpoint serves nothing yet)
    - set_traffic / promote: set the split `traffic` (promote: the new version takes 100%; move the champion alias)
    - smoke_test: predict the smoke instances with `version` alone, then `advance(..., smoke=...)` with the verdict
    - wait: nothing until `until` (a health failure may still end the wait sooner: re-plan on every tick)
    - hold: a wait for traffic after the judged window ended too quiet (on_no_traffic: hold), at most until `until`
    - undeploy_previous: undeploy `version`, which takes no traffic any more
    - roll_back: set `traffic` if it names a version, then undeploy `version` (the new one); champion alias back
    - done: the rollout ended with `outcome`
    """

    model_config = ConfigDict(defer_build=True, frozen=True)

    kind: ActionKind
    next_phase: RolloutPhase
    version: str | None = None
    traffic: dict[str, int] = Field(default_factory=dict)
    until: float | None = None
    outcome: Outcome | None = None
    reason: str = ""


def unsupported(strategy: DirectRollout | CanaryRollout | BlueGreenRollout, can_address_versions: bool) -> str | None:
    """Why `strategy` cannot work on an endpoint (None: it can): blue-green smoke-tests a version taking 0% of the
    traffic, which an endpoint that routes every request by its split (Vertex AI) can never reach."""
    if isinstance(strategy, BlueGreenRollout) and not can_address_versions:
        return (
            "rollout.strategy: blue-green needs an endpoint that can send the smoke test to a version taking 0% of"
            " its traffic; this endpoint (Vertex AI) routes every request by its traffic split, so the smoke test"
            " could never pass: use canary"
        )
    return None


def start(new_version: str, previous_version: str | None, now: float) -> RolloutProgress:
    """A rollout about to begin; `previous_version` is the version taking traffic now (None: first model)."""
    return RolloutProgress(
        started_at=now, phase_started_at=now, previous_version=previous_version, new_version=new_version
    )


def health_since(progress: RolloutProgress) -> float:
    """Where the health window of the current phase starts (the canary's or the switch's beginning)."""
    return progress.phase_started_at


def plan(
    strategy: DirectRollout | CanaryRollout | BlueGreenRollout,
    progress: RolloutProgress,
    now: float,
    health: EndpointHealth | None = None,
    *,
    deployed: Collection[str] | None = None,
) -> RolloutAction:
    """The next action of a rollout. `health` is the new version's since `health_since(progress)`;
    `deployed` (the endpoint's deployed versions, if known) tells whether the previous version is still there."""
    if progress.phase in TERMINAL_PHASES:
        return _done(progress)
    if progress.phase == "pending":
        new = progress.new_version
        return RolloutAction(kind="deploy", next_phase="deployed", version=new, reason=f"deploy {new} at 0%")
    if isinstance(strategy, CanaryRollout):
        return _canary(strategy, progress, now, health, deployed)
    if isinstance(strategy, BlueGreenRollout):
        return _blue_green(strategy, progress, now, health, deployed)
    return _direct(progress, deployed)


def advance(
    progress: RolloutProgress, action: RolloutAction, now: float, smoke: tuple[bool, str] | None = None
) -> RolloutProgress:
    """The progress once `action` has been applied; a smoke test needs its verdict `smoke` (passed, detail)."""
    if action.kind in WAITS or action.next_phase == progress.phase:
        return progress
    update: dict[str, Any] = {"phase": action.next_phase}
    if action.kind == "smoke_test":
        if smoke is None:
            raise ValueError("advance after a smoke test needs its verdict: smoke=(passed, detail)")
        update = {"phase": "smoke_passed" if smoke[0] else "smoke_failed", "smoke_detail": smoke[1]}
    if action.kind in ("set_traffic", "promote", "roll_back"):
        update["traffic"] = dict(action.traffic)
    if action.kind == "roll_back":
        update["reason"] = action.reason
    if update["phase"] != progress.phase:
        update["phase_started_at"] = now
    return progress.model_copy(update=update)


def _direct(progress: RolloutProgress, deployed: Collection[str] | None) -> RolloutAction:
    if progress.phase == "deployed":
        return _promote(progress, "direct rollout: all traffic at once", "promoted", deployed)
    return _finish(progress)


def _canary(
    strategy: CanaryRollout,
    progress: RolloutProgress,
    now: float,
    health: EndpointHealth | None,
    deployed: Collection[str] | None,
) -> RolloutAction:
    new, old = progress.new_version, _previous(progress, deployed)
    if progress.phase == "deployed":
        if old is None:
            why = "no previous version serving to compare a canary with"
            return _promote(progress, why, "promoted", deployed)
        split = {new: strategy.percent, old: 100 - strategy.percent}
        reason = f"canary: {new} takes {strategy.percent}% for {strategy.bake_s:g}s"
        return RolloutAction(kind="set_traffic", next_phase="baking", traffic=split, reason=reason)
    if progress.phase == "baking":
        return _bake(strategy, progress, now, health, deployed)
    return _finish(progress)


def _bake(
    strategy: CanaryRollout,
    progress: RolloutProgress,
    now: float,
    health: EndpointHealth | None,
    deployed: Collection[str] | None,
) -> RolloutAction:
    verdict = assess(health, strategy.health)
    if verdict.state == "unhealthy":
        return roll_back(progress, f"canary {progress.new_version} unhealthy: {verdict.detail}", deployed)
    bake_end = progress.phase_started_at + strategy.bake_s
    if now < bake_end:
        return _wait(progress, bake_end, f"baking until the bake time ends: {verdict.detail}")
    if verdict.state == "healthy":
        return _promote(progress, f"canary healthy after {strategy.bake_s:g}s: {verdict.detail}", "promoted", deployed)
    return _quiet_end(
        strategy, progress, now, health, deployed, lambda why: _promote(progress, why, "promoted", deployed)
    )


def _blue_green(
    strategy: BlueGreenRollout,
    progress: RolloutProgress,
    now: float,
    health: EndpointHealth | None,
    deployed: Collection[str] | None,
) -> RolloutAction:
    new = progress.new_version
    if progress.phase == "deployed":
        return RolloutAction(
            kind="smoke_test", next_phase="smoke_passed", version=new, reason=f"smoke-test {new} before the switch"
        )
    if progress.phase == "smoke_failed":
        return roll_back(progress, f"smoke test of {new} failed: {progress.smoke_detail}", deployed)
    if progress.phase == "smoke_passed":
        window = f"keep the previous version {strategy.rollback_window_s:g}s"
        return _promote(progress, f"smoke test passed ({progress.smoke_detail}); switch, {window}", "holding", deployed)
    if progress.phase == "holding":
        verdict = assess(health, strategy.health)
        if verdict.state == "unhealthy":
            return roll_back(progress, f"{new} unhealthy in the rollback window: {verdict.detail}", deployed)
        window_end = progress.phase_started_at + strategy.rollback_window_s
        if now < window_end:
            return _wait(progress, window_end, f"rollback window open: {verdict.detail}")
        if verdict.state == "healthy":
            return _finish(progress, f"rollback window closed: {verdict.detail}")
        return _quiet_end(strategy, progress, now, health, deployed, lambda why: _finish(progress, why))
    return _finish(progress)


def _quiet_end(
    strategy: CanaryRollout | BlueGreenRollout,
    progress: RolloutProgress,
    now: float,
    health: EndpointHealth | None,
    deployed: Collection[str] | None,
    promote: Callable[[str], RolloutAction],
) -> RolloutAction:
    """The judged window ended without enough traffic: one rule, `on_no_traffic`, for every strategy.

    `hold` waits for traffic (a healthy or unhealthy verdict on a later plan decides) up to the max, then rolls
    back: a version nobody judged never stays the champion unless the spec says `promote`.
    """
    quiet = quiet_words(health, strategy.health, now - progress.phase_started_at)
    rule = strategy.on_no_traffic
    if rule == "promote":
        return promote(f"{quiet}: promoted (on_no_traffic: promote)")
    if rule == "roll_back":
        return roll_back(progress, f"{quiet} (on_no_traffic: roll_back)", deployed)
    give_up, most = progress.phase_started_at + strategy.give_up_s, f"{strategy.give_up_s:g} s"
    if isinstance(strategy, CanaryRollout):
        limit, meanwhile = "max_bake_s", f"{progress.new_version} keeps {strategy.percent}%"
    else:
        limit, meanwhile = "max_window_s", f"{progress.previous_version or 'nothing'} stays deployed"
    if now >= give_up:
        why = f"{quiet}: held until {limit} ({most}), then rolled back (on_no_traffic: hold)"
        return roll_back(progress, why, deployed)
    why = f"{quiet}: held (on_no_traffic: hold) for up to {most}, while {meanwhile}"
    return RolloutAction(kind="hold", next_phase=progress.phase, until=give_up, reason=why)


def _previous(progress: RolloutProgress, deployed: Collection[str] | None) -> str | None:
    """The previous version if it is still deployed (or nothing says otherwise)."""
    old = progress.previous_version
    return old if old is not None and (deployed is None or old in deployed) else None


def _promote(
    progress: RolloutProgress, reason: str, next_phase: RolloutPhase, deployed: Collection[str] | None
) -> RolloutAction:
    split = {progress.new_version: 100}
    old = _previous(progress, deployed)
    if old is not None:
        split[old] = 0
    return RolloutAction(
        kind="promote", next_phase=next_phase, traffic=split, version=progress.new_version, reason=reason
    )


def _finish(progress: RolloutProgress, reason: str = "") -> RolloutAction:
    """From `promoted`/`holding`: undeploy the previous version, or end if there is none."""
    old = progress.previous_version
    if old is None:
        return RolloutAction(kind="done", next_phase="done", outcome="promoted", reason=reason or "promoted")
    why = f"{reason}; " if reason else ""
    return RolloutAction(
        kind="undeploy_previous", next_phase="done", version=old, reason=f"{why}undeploy the previous version {old}"
    )


def roll_back(progress: RolloutProgress, reason: str, deployed: Collection[str] | None) -> RolloutAction:
    """Traffic back to the previous version if it is still deployed, then the new one undeployed; else `failed`."""
    old, new = _previous(progress, deployed), progress.new_version
    if old is not None:
        return RolloutAction(
            kind="roll_back",
            next_phase="rolled_back",
            traffic={old: 100},
            version=new,
            reason=f"{reason}; back to {old}",
        )
    gone = "first model" if progress.previous_version is None else f"{progress.previous_version} is no longer deployed"
    return RolloutAction(
        kind="roll_back", next_phase="failed", version=new, reason=f"{reason}; nothing to roll back to ({gone})"
    )


def _wait(progress: RolloutProgress, until: float, reason: str) -> RolloutAction:
    return RolloutAction(kind="wait", next_phase=progress.phase, until=until, reason=reason)


def _done(progress: RolloutProgress) -> RolloutAction:
    outcome: Outcome = "failed"
    if progress.phase == "done":
        outcome = "promoted"
    elif progress.phase == "rolled_back":
        outcome = "rolled_back"
    return RolloutAction(kind="done", next_phase=progress.phase, outcome=outcome, reason=progress.reason or outcome)
