"""The rolling_out step of a pipeline with `environments:`: one run climbs them in order, staging then production.

Why one run rather than a promotion record per environment driven by the reconcile tick: the run already carries
what every environment needs (the registered version, its commit, the gate's verdict, who approved), and the
orchestrator's nudges, the scheduled looks (`look_at`) and the reconcile tick already advance a waiting run. So the
run stays in rolling_out (or awaiting_approval before an environment that needs one) until the last environment
promoted it; each environment's rollout is the ordinary RolloutStep, pointed at that environment's endpoint, with
its effect keys scoped to the environment (a deploy of v2 to staging is not a deploy of v2 to production) and the
promote moving that environment's registry alias (and the champion, in the last one). Entering an environment is
recorded twice, once: on the run's effect ledger (where the run stands after a crash) and in the promotion history.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from relaunch.domain import environments as climb
from relaunch.domain.approval import approval_deadline, approves, awaited
from relaunch.domain.effects import Effect
from relaunch.domain.environments import PromotionRecord
from relaunch.domain.model import EndpointHealth, PipelineRun, RunState, TimelineEntry
from relaunch.domain.ports import (
    BlobStore,
    Endpoint,
    EnvironmentAliases,
    ModelRegistry,
    Notifier,
    PromotionHistory,
    StepStore,
    TransientError,
)
from relaunch.domain.smoke import smoke_verdict
from relaunch.domain.spec import PipelineSpec
from relaunch.domain.spec_environments import EnvironmentSpec
from relaunch.domain.states import can_transition, transition
from relaunch.service.environment_ports import EnvironmentRegistry, ScopedStore
from relaunch.service.notices import status_note
from relaunch.service.rollout_step import NothingToRollBack, RolloutStep

S = RunState


class EnvironmentRollouts(RolloutStep):
    """The orchestrator's rollout step: a spec without environments rolls out as ever, one with them climbs.

    The promotion history is the store's and the aliases are the registry's, when they keep them (the SQLite and
    Firestore stores, the local and Vertex registries do); a pipeline with environments fails its rollout otherwise.
    """

    def __init__(
        self,
        store: StepStore,
        registry: ModelRegistry,
        endpoint: Endpoint,
        notifier: Notifier,
        blobs: BlobStore,
        clock: Callable[[], float] = time.time,
        *,
        artifact_root: str,
        look_at: Callable[[str, float], bool] | None = None,
    ) -> None:
        super().__init__(
            store, registry, endpoint, notifier, blobs, clock, artifact_root=artifact_root, look_at=look_at
        )
        self.history = store if isinstance(store, PromotionHistory) else None
        self.aliases = registry if isinstance(registry, EnvironmentAliases) else None

    def run(self, run: PipelineRun, spec: PipelineSpec, *, final: bool = True) -> PipelineRun | None:
        """Advance the rollout, or the climb through the environments, as far as it goes now (None: it waits)."""
        envs = spec.environments
        if not envs:
            moved = super().run(run, spec, final=final)
            if moved is not None and moved.state is S.PROMOTED and moved.rollout is not None and self.history:
                self.history.record_promotion(self._implicit(moved, spec, moved.rollout.new_version))
            return moved
        if self.history is None or self.aliases is None:
            why = "environments need a store that keeps promotion history and a registry with aliases"
            return self._stop(run, f"{why}; this deployment has neither", S.FAILED)
        while True:
            index = self._position(run, envs)
            if index == len(envs):
                return run  # every environment entered: the last rollout's end moved the run already
            env, final = envs[index], index == len(envs) - 1
            if run.rollout is None or run.state is S.AWAITING_APPROVAL:
                entered = self._enter(run, spec, index)
                if entered is None or entered.state.terminal:
                    return entered
                run = entered
            if not (run.rollout is not None and run.rollout.phase == "done" and run.state is S.ROLLING_OUT):
                moved = self._rollout(env, final).run(run, self._spec_of(spec, env), final=final)
                if moved is None or (moved.state.terminal and moved.state is not S.PROMOTED):
                    return moved
                run = moved
            run = self._entered(run, env)
            if final:
                return run

    def awaits(self, run: PipelineRun, spec: PipelineSpec) -> bool:
        """Whether an awaiting_approval run waits to enter an environment (not for a fork's build or the gate)."""
        return bool(spec.environments) and awaited(run) == "environment"

    # -- entering an environment ------------------------------------------------------------------------------

    def _enter(self, run: PipelineRun, spec: PipelineSpec, index: int) -> PipelineRun | None:
        """Check what entering environment `index` needs; the run (rolling out) once it may go, None to wait."""
        env = spec.environments[index]
        before_env = spec.environments[index - 1] if index else None
        before = self._record(run.id, before_env.name) if before_env else None
        health = self._bake_health(before_env, before) if before_env and before and env.min_bake_s else None
        approved = approves(self.store.get_effect(run.id, climb.approval_key(env.name)), run)  # for this commit
        decided = climb.entry(env, before, now=self.clock(), approved=approved, health=health)
        if decided.kind == "unhealthy":
            return self._stop(run, decided.reason)
        if decided.kind == "bake":
            assert decided.until is not None
            self._note_once(run, f"environment:{env.name}:bake", decided.reason, {"until": decided.until})
            look = f"environment:{env.name}:look:{decided.until:.3f}"  # one look per (run, time), as a rollout's
            if self.look_at is not None and self.store.get_effect(run.id, look) is None:
                if self.look_at(run.id, decided.until):
                    self.store.put_effect(run.id, look, {"not_before": decided.until})
            return None
        smoke = self._entry_smoke(run, env, before_env, before) if before_env and before and env.smoke else None
        if smoke is not None and not smoke[0]:
            return self._stop(run, f"smoke test in {before_env and before_env.name} failed: {smoke[1]}")
        if decided.kind == "approval":
            self._hold(run, env, climb.entry_timeout(spec.environments, env.name, spec.gate.approval_timeout))
            return None
        checks = [*decided.checks, *([f"smoke: {smoke[1]}"] if smoke else [])]
        self.store.put_effect(run.id, f"environment:{env.name}:checks", {"checks": checks})
        if run.state is S.AWAITING_APPROVAL:
            moved, entry = transition(run, S.ROLLING_OUT, f"approved into {env.name}", now=self.clock())
            run = self.store.save_run(moved.model_copy(update={"awaiting": None, "approval_deadline": None}), [entry])
        note = TimelineEntry(
            kind="environment", message=f"entering {env.name} ({env.endpoint})", data={"checks": checks}
        )
        return self.store.save_run(run.model_copy(update={"rollout": None}), [note])

    def _entered(self, run: PipelineRun, env: EnvironmentSpec) -> PipelineRun:
        """Record the run's promotion into `env` (once) and clear its rollout for the next environment."""
        assert run.rollout is not None
        approval = self.store.get_effect(run.id, climb.approval_key(env.name))
        checks = self.store.get_effect(run.id, f"environment:{env.name}:checks") or {}
        record = PromotionRecord(
            pipeline=run.pipeline,
            environment=env.name,
            version=run.rollout.new_version,
            replaced=run.rollout.previous_version,
            run_id=run.id,
            sha=run.trigger.sha,
            approved_by=_approver(approval, self.store.get_effect(run.id, Effect.PROMOTION_APPROVAL), run),
            checks=[str(c) for c in checks.get("checks", [])],
            at=self.clock(),
        )
        self.store.put_effect(run.id, climb.record_key(env.name), record.model_dump())
        kept = self._record(run.id, env.name) or record  # first write wins: a re-run keeps the first record
        assert self.history is not None  # run() checked
        self.history.record_promotion(kept)
        if run.state is S.PROMOTED:
            return run
        note = TimelineEntry(kind="environment", message=f"{kept.version} serves {env.name}", data=kept.model_dump())
        return self.store.save_run(run.model_copy(update={"rollout": None}), [note])

    def _hold(self, run: PipelineRun, env: EnvironmentSpec, timeout: float | None) -> None:
        """Wait in awaiting_approval for `env` until `timeout` runs out, and say so once (commit status, Slack)."""
        if run.state is not S.AWAITING_APPROVAL:
            now = self.clock()
            moved, entry = transition(run, S.AWAITING_APPROVAL, f"waiting for an approval to enter {env.name}", now=now)
            deadline = approval_deadline(now, timeout)
            waits = {"awaiting": f"environment:{env.name}", "approval_deadline": deadline}
            run = self.store.save_run(moved.model_copy(update=waits), [entry])
            if deadline is not None and self.look_at is not None:
                self.look_at(run.id, deadline)  # the expiry is seen then, as a gated wait's is
        text = f"Awaiting approval to enter {env.name}: relaunch approve {run.id}"
        note = status_note(run, "deploy", "pending", text, endpoint=env.endpoint, model_version=run.model_version)
        self.notices.post(run.id, f"notify:environment:{env.name}:approval", lambda: note)

    def _stop(self, run: PipelineRun, reason: str, target: RunState = S.ROLLED_BACK) -> PipelineRun:
        target = target if can_transition(run.state, target) else S.REJECTED
        moved, entry = transition(run, target, reason, now=self.clock())
        return self.store.save_run(moved, [entry])

    def _entry_smoke(
        self, run: PipelineRun, env: EnvironmentSpec, before_env: EnvironmentSpec, before: PromotionRecord
    ) -> tuple[bool, str]:
        """Send `env`'s smoke instances to the version where it serves now (the environment before), once."""
        key = f"environment:{env.name}:smoke"
        if (done := self.store.get_effect(run.id, key)) is not None:
            return bool(done["passed"]), str(done["detail"])
        try:
            answer = self.endpoint.predict(before_env.endpoint, list(env.smoke), version=before.version)
            passed, detail = smoke_verdict(len(env.smoke), answer)
        except (ValueError, TransientError) as exc:
            passed, detail = smoke_verdict(len(env.smoke), None, str(exc))
        self.store.put_effect(run.id, key, {"passed": passed, "detail": detail})
        return passed, detail

    def _bake_health(self, env: EnvironmentSpec, record: PromotionRecord) -> EndpointHealth | None:
        try:
            return self.endpoint.health(env.endpoint, record.version, record.at)
        except ValueError:  # the endpoint cannot tell: unknown, which a bake does not count as a failure
            return None

    # -- rollback by hand --------------------------------------------------------------------------------------

    def roll_back_named(self, pipeline: str, specs: Mapping[str, PipelineSpec], env: str | None) -> PipelineRun:
        """`relaunch rollback PIPELINE [--env ENV]` (NothingToRollBack for an unknown pipeline or nothing to undo)."""
        spec = specs.get(pipeline)
        if spec is None:
            raise NothingToRollBack(f"no pipeline {pipeline!r} (pipelines: {', '.join(sorted(specs))})")
        if not spec.environments and env is None:
            back = self.roll_back_by_hand(pipeline, spec)
            latest = self.history.promotions(pipeline, spec.endpoint, limit=1) if self.history else []
            if latest and latest[0].run_id == back.id and latest[0].kind == "promoted" and latest[0].replaced:
                undone = self._implicit(back, spec, latest[0].replaced, replaced=latest[0].version)
                assert self.history is not None  # latest came from it
                self.history.record_promotion(undone.model_copy(update={"approved_by": "relaunch rollback"}))
            return back
        return self._roll_back_in(pipeline, spec, env)

    def abort(self, run: PipelineRun, spec: PipelineSpec, reason: str) -> PipelineRun:
        """End a stuck climb: roll back the environment it is rolling out into, or stop it where it waits."""
        if not spec.environments:
            return super().abort(run, spec, reason)
        index = self._position(run, spec.environments)
        if run.rollout is None or index == len(spec.environments):
            return self._stop(run, reason, S.FAILED)
        env = spec.environments[index]
        final = index == len(spec.environments) - 1
        return self._rollout(env, final).abort(run, self._spec_of(spec, env), reason)

    def _roll_back_in(self, pipeline: str, spec: PipelineSpec, name: str | None) -> PipelineRun:
        envs = {e.name: e for e in spec.environments}
        if not envs:
            raise NothingToRollBack(f"{pipeline} has no environments: leave out --env")
        env = envs.get(name) if name else spec.environments[-1]
        if env is None:
            raise NothingToRollBack(f"{pipeline} has no environment {name!r} (environments: {', '.join(envs)})")
        final = env is spec.environments[-1]
        for active in self.store.active_runs(pipeline):
            here = self._position(active, spec.environments) == spec.environments.index(env)
            if active.state is S.ROLLING_OUT and active.rollout is not None and here:
                return self._rollout(env, final).abort(active, self._spec_of(spec, env), "rolled back by hand")
        if self.history is None or self.aliases is None:
            raise NothingToRollBack("this deployment keeps no environment history to roll back with")
        latest = self.history.promotions(pipeline, env.name, limit=1)
        if not latest or latest[0].kind != "promoted":
            raise NothingToRollBack(f"{pipeline}: no promotion into {env.name} to roll back")
        return self._restore(latest[0], env, final)

    def _restore(self, record: PromotionRecord, env: EnvironmentSpec, final: bool) -> PipelineRun:
        """Put the version `record` replaced back on the environment's endpoint and alias; others stay as they are."""
        pipeline, new, old = record.pipeline, record.version, record.replaced
        run = self.store.get_run(record.run_id)
        if run is None or old is None:
            raise NothingToRollBack(f"{pipeline}: {new} was the first model in {env.name}, nothing to roll back to")
        assert self.aliases is not None and self.history is not None  # _roll_back_in checked
        holder = self.aliases.alias(pipeline, env.name)
        if holder is None or holder.version != new:
            raise NothingToRollBack(f"{pipeline}: {env.name} serves {holder and holder.version}, not {new}")
        scoped = ScopedStore(self.store, f"rollback:{env.name}")
        key = f"endpoint-op:deploy:{old}"
        recorded = scoped.get_effect(run.id, key)
        running = self.endpoint.deploy(
            env.endpoint, self._version(pipeline, old), operation=str(recorded["operation"]) if recorded else None
        )
        if running is not None:
            scoped.put_effect(run.id, key, {"operation": running})
            raise TransientError(f"deploy of {old} to {env.endpoint} still running; run the rollback again")
        self.endpoint.set_traffic(env.endpoint, {old: 100})
        EnvironmentRegistry(self.registry, self.aliases, env.name, final=final).set_champion(pipeline, old)
        self.endpoint.undeploy(env.endpoint, new)  # a long undeploy finishes on its own: traffic is already off
        reason = f"rolled back by hand in {env.name} to {old}"
        back = record.model_copy(
            update={
                "kind": "rolled_back",
                "version": old,
                "replaced": new,
                "at": self.clock(),
                "approved_by": "relaunch rollback",
                "checks": [],
            }
        )
        self.history.record_promotion(back)
        note = TimelineEntry(kind="environment", message=reason, data=back.model_dump())
        if final and can_transition(run.state, S.ROLLED_BACK):
            moved, entry = transition(run, S.ROLLED_BACK, reason, now=self.clock())
            return self.store.save_run(moved, [entry, note])
        return self.store.save_run(run.model_copy(update={"reason": reason}), [note])

    def _implicit(
        self, run: PipelineRun, spec: PipelineSpec, version: str, replaced: str | None = None
    ) -> PromotionRecord:
        """A record of the one environment a pipeline without `environments:` has: its endpoint, named after it."""
        gate = self.store.get_effect(run.id, Effect.PROMOTION_APPROVAL)  # gate.approval: who let it roll out
        rollout = run.rollout
        return PromotionRecord(
            pipeline=run.pipeline,
            environment=spec.endpoint,
            kind="promoted" if replaced is None else "rolled_back",
            version=version,
            replaced=replaced if replaced is not None else (rollout.previous_version if rollout else None),
            run_id=run.id,
            sha=run.trigger.sha,
            approved_by=_approver(gate, None, run),  # the one environment: the gate approval is its entry
            at=self.clock(),
        )

    # -- helpers -----------------------------------------------------------------------------------------------

    def _position(self, run: PipelineRun, envs: Sequence[EnvironmentSpec]) -> int:
        reached = {e.name for e in envs if self.store.get_effect(run.id, climb.record_key(e.name)) is not None}
        return climb.position(list(envs), reached)

    def _record(self, run_id: str, name: str) -> PromotionRecord | None:
        found = self.store.get_effect(run_id, climb.record_key(name))
        return PromotionRecord.model_validate(found) if found is not None else None

    def _rollout(self, env: EnvironmentSpec, final: bool) -> RolloutStep:
        assert self.aliases is not None  # run() and _roll_back_in checked
        registry = EnvironmentRegistry(self.registry, self.aliases, env.name, final=final)
        store = ScopedStore(self.store, f"env:{env.name}")
        return RolloutStep(
            store,
            registry,
            self.endpoint,
            self.notifier,
            self.blobs,
            lambda: self.clock(),  # read at each call: a test (or the reconciler's) clock set on this step applies
            artifact_root=self.artifact_root,
            look_at=self.look_at,
        )

    @staticmethod
    def _spec_of(spec: PipelineSpec, env: EnvironmentSpec) -> PipelineSpec:
        return spec.model_copy(update={"endpoint": env.endpoint, "rollout": env.rollout})


def _approver(entry: dict[str, Any] | None, promotion: dict[str, Any] | None, run: PipelineRun) -> str:
    """Who let the run in: the person whose approval of this entry covers its commit, else the one who approved its
    promotion at the gate (gate.approval), else the gate alone (no approval was needed)."""
    if entry is not None and approves(entry, run):
        return str(entry["by"])
    if promotion is not None and approves(promotion, run):
        return f"{promotion['by']} (at the gate)"
    return "gate (no approval required)"
