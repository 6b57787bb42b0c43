"""Service layer of every inbound path: dedupe, plan, persist to the inbox, publish, answer. No network calls.

Each delivery is written to the inbox (raw body, redacted headers, key, outcome) together with the runs it starts,
atomically, before the answer; a key already in the inbox is answered "duplicate" and does nothing else. A run is
also deduped on what it would do (its `content_key`: pipeline, push or PR head, commit): a delivery under a new key
whose runs all exist already is answered "duplicate", names those runs and starts nothing (`--force` to run again).
A delivery that cannot be planned (no valid spec, a bug) is still kept, as `failed`, and answered 503: it stays
replayable, and a redelivery of its key replays it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from relaunch.domain import effects
from relaunch.domain.coalescing import cooldown_start
from relaunch.domain.commands import COMMANDS_TOPIC, Command, StartRun
from relaunch.domain.evaluator import SUFFIX as EVALUATOR_SUFFIX
from relaunch.domain.model import Delivery, Source
from relaunch.domain.ports import Bus, IngestStore
from relaunch.domain.spec import PipelineSpec, SpecError
from relaunch.service.plans import Plan, forced
from relaunch.triggers.errors import TriggerError
from relaunch.triggers.github import redact_headers

if TYPE_CHECKING:  # each source's planning is imported by its method: a function process loads only its own
    from relaunch.triggers.cloudbuild import BuildEvent
    from relaunch.triggers.drift import DriftAlert
    from relaunch.triggers.github import GitHubEvent
    from relaunch.triggers.retrain import RetrainRequest
    from relaunch.triggers.scheduler import ScheduleTick
    from relaunch.triggers.vertex_jobs import JobLogEvent
    from relaunch.triggers.wandb import WandbEvent, WandbIgnored

log = logging.getLogger(__name__)
FAILED = "failed"  # an inbox outcome: the delivery was kept but not acted on; replay it once the cause is fixed


@dataclass(frozen=True)
class Reply:
    """What the function answers: a status code and a JSON body."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)


class UnknownDelivery(LookupError):
    """No inbox row has this key."""


def inbound(source: Source, key: str, headers: Mapping[str, str], body: bytes) -> Delivery:
    """An inbox row for a delivery as it arrived, secrets removed from its headers."""
    return Delivery(
        key=key, source=source, headers=redact_headers(headers), body=body.decode("utf-8", errors="replace")
    )


class IngestService:
    """Turns verified inbound events into inbox rows, runs and commands."""

    def __init__(
        self,
        store: IngestStore,
        bus: Bus,
        specs: Callable[[], Mapping[str, PipelineSpec]],
        *,
        promote_alias: str = "production",
        clock: Callable[[], float] = time.time,
        spec_problem: Callable[[], str | None] = lambda: None,
        commands_topic: str = COMMANDS_TOPIC,
    ) -> None:
        self._store = store
        self._commands_topic = commands_topic  # RELAUNCH_PUBSUB_COMMANDS_TOPIC: what deploy wires to the orchestrator
        self._bus = bus
        self._specs = specs
        self._promote_alias = promote_alias
        self._clock = clock
        self._spec_problem = spec_problem  # a spec edit that does not validate: the last valid specs keep serving

    # -- sources ---------------------------------------------------------------------------------------------

    def github(self, event: GitHubEvent, headers: Mapping[str, str], body: bytes) -> Reply:
        """Act on a verified GitHub delivery (bad dispatch inputs raise a 422 before anything is written)."""
        return self.on_github(event, inbound(Source.GITHUB, effects.github_delivery(event.delivery_id), headers, body))

    def on_github(self, event: GitHubEvent, delivery: Delivery, *, force: bool = False) -> Reply:
        from relaunch.service.ingest_github import plan_github

        return self.accept(delivery, lambda: plan_github(event, self._specs(), delivery.key), force=force)

    def wandb(self, event: WandbEvent | WandbIgnored, headers: Mapping[str, str], body: bytes) -> Reply:
        """Act on an authenticated W&B automation delivery; W&B sends no id, the event's content is the key."""
        return self.on_wandb(event, inbound(Source.WANDB, event.dedupe_key, headers, body))

    def on_wandb(self, event: WandbEvent | WandbIgnored, delivery: Delivery) -> Reply:
        from relaunch.service.ingest_events import plan_wandb

        return self.accept(delivery, lambda: plan_wandb(event, self._specs(), delivery.key, self._promote_alias))

    def drift(self, alert: DriftAlert, delivery: Delivery) -> Reply:
        """Retrain the pipelines a drift alert names, as their drift policies allow."""
        from relaunch.service.ingest_events import plan_drift

        now = self._clock()
        return self.accept(delivery, lambda: plan_drift(alert, self._specs(), delivery.key, self._last_drift, now))

    def schedule(self, tick: ScheduleTick, delivery: Delivery) -> Reply:
        """Retrain the pipeline a scheduler tick names."""
        from relaunch.service.ingest_events import plan_schedule

        return self.accept(delivery, lambda: plan_schedule(tick, self._specs(), delivery.key))

    def retrain(self, request: RetrainRequest, delivery: Delivery) -> Reply:
        """A manual retrain from the commands topic: the run a workflow_dispatch with the same inputs would start."""
        from relaunch.service.ingest_github import plan_dispatch

        if request.request_id and not delivery.key.startswith(effects.RETRAIN_PREFIX):  # a replay keeps its key
            delivery = delivery.model_copy(update={"key": effects.retrain_delivery(request.request_id)})
        specs, actor = self._specs(), request.requested_by
        try:  # bad inputs cannot get better on redelivery: acknowledged and dead-lettered, as a malformed message
            return self.accept(
                delivery,
                lambda: plan_dispatch(
                    request.repo, request.inputs, specs, delivery.key, where="retrain", ref=request.ref, actor=actor
                ),
            )
        except TriggerError as exc:
            return self.refuse(delivery, exc)

    def build(self, event: BuildEvent, delivery: Delivery) -> Reply:
        """Record a Cloud Build status; a final one nudges its run (an evaluator's build, `<run>.evaluator`, too)."""
        from relaunch.service.ingest_events import plan_build

        owner = (event.run_id or "").removesuffix(EVALUATOR_SUFFIX)
        return self.accept(delivery, lambda: plan_build(event, self._store.get_run(owner)))

    def vertex_job(self, event: JobLogEvent, delivery: Delivery) -> Reply:
        """A Vertex AI CustomJob logged something: nudge the active runs waiting on it (they read its state)."""
        from relaunch.service.ingest_events import plan_job_log

        active = [run for name in self._specs() for run in self._store.active_runs(name)]
        return self.accept(delivery, lambda: plan_job_log(event, active))

    def refuse(self, delivery: Delivery, error: TriggerError) -> Reply:
        """Acknowledge a message that can never be processed: inbox row and dead letter, once."""
        reason = f"{error.field}: {error.message}" if error.field else error.message
        known = self._store.get_delivery(delivery.key)
        if known is not None:
            return self._duplicate(known)
        if self._store.record_delivery(delivery.model_copy(update={"outcome": f"dead-lettered: {reason}"}), []):
            self._store.dead_letter(delivery.source, reason[:2000], delivery.body)
        return Reply(200, {"outcome": "dead-lettered", "reason": reason})

    # -- the inbox -------------------------------------------------------------------------------------------

    def accept(self, delivery: Delivery, plan: Callable[[], Plan], *, force: bool = False) -> Reply:
        """Plan, write the inbox row with its runs (a known key writes nothing), publish; the answer or "duplicate".

        The hot path is one write transaction: a store with an outbox commits the runs' start commands with them
        (`Recorded.started`); with another store they are published once it returns. A process that dies between
        the two leaves runs in `received` that no command will start: the reconcile tick advances every run that has
        been quiet too long.
        """
        try:
            decided = plan()
        except TriggerError:
            raise  # bad input: the caller answers 4xx (or dead-letters) before anything is written
        except Exception as exc:  # noqa: BLE001 (not the input's fault: keep the delivery for a replay)
            return self._keep_failed(delivery, exc)
        if force:
            decided = forced(decided, "forced replay")
        for command in decided.commands:  # idempotent nudges: sent before the row, so a crash resends them
            self._publish(command)
        row = delivery.model_copy(update={"outcome": decided.outcome, "run_ids": []})  # the store lists those written
        recorded = self._store.record_delivery(row, decided.runs)
        if not recorded:
            known = self._store.get_delivery(delivery.key)
            if known is not None and known.outcome.startswith(FAILED) and not effects.is_replay(known.key):
                return self.replay(known.key)  # the sender redelivers one we kept but could not act on: act now
            return self._duplicate(known) if known else Reply(200, {"outcome": "duplicate"})
        started = [run.id for run in decided.runs if run.id not in recorded.held]
        if not recorded.started:
            self._start(started)
        reply = Reply(decided.status, decided.body)
        if recorded.held:
            reply = self._content_duplicate(delivery, decided, started, recorded.held)
        return self._with_spec_problem(reply)

    def _content_duplicate(self, delivery: Delivery, decided: Plan, started: list[str], held: dict[str, str]) -> Reply:
        """The answer when some (or all) runs a delivery would start already exist: it names them."""
        runs = {run.id: run for run in decided.runs}
        holders = list(dict.fromkeys(held.values()))
        what = "; ".join(
            f"{runs[new].pipeline}: run {old} already has {runs[new].trigger.kind} {(runs[new].trigger.sha or '')[:7]}"
            for new, old in held.items()
        )
        hint = f"to run it again on purpose: relaunch replay {delivery.key} --force"
        if started:
            body = {**decided.body, "runs": started, "duplicates": holders, "reason": what, "hint": hint}
            self._store.set_delivery_outcome(delivery.key, f"accepted: {len(started)} run(s); duplicate: {what}")
            return Reply(decided.status, body)
        self._store.set_delivery_outcome(delivery.key, f"duplicate: {what}")
        return Reply(200, {"outcome": "duplicate", "runs": holders, "reason": what, "hint": hint})

    def _keep_failed(self, delivery: Delivery, exc: Exception) -> Reply:
        """Keep a delivery that could not be acted on, answer 503, and say how to replay it."""
        why = f"{type(exc).__name__}: {str(exc)[:500]}"
        if isinstance(exc, SpecError):
            log.warning("delivery %s kept, not acted on: %s", delivery.key, why)
        else:  # nobody foresaw this: one ERROR with its traceback to fix it by
            log.exception("delivery %s kept, not acted on", delivery.key)
        row = delivery.model_copy(update={"outcome": f"{FAILED}: {why}", "run_ids": []})
        if not self._store.record_delivery(row, []):
            known = self._store.get_delivery(delivery.key)
            if known is not None and not known.outcome.startswith(FAILED):
                return self._duplicate(known)
        body = {"outcome": FAILED, "error": why, "key": delivery.key, "replay": f"relaunch replay {delivery.key}"}
        return Reply(503, body)

    def _with_spec_problem(self, reply: Reply) -> Reply:
        problem = self._spec_problem()
        return Reply(reply.status, {**reply.body, "spec_problem": problem}) if problem else reply

    def replay(self, key: str, *, force: bool = False) -> Reply:
        """Re-drive a stored delivery: nudge its runs still in flight, else run it again under `KEY#replay-N`.

        A GitHub delivery whose runs already exist answers "duplicate" unless `force` (then its runs are new ones,
        marked as asked for on purpose); other sources carry their own reason and always run again.
        """
        from relaunch.service.ingest_replay import reparse

        original = self._store.get_delivery(key)
        if original is None:
            raise UnknownDelivery(f"no delivery {key!r} in the inbox (see `relaunch inbox`)")
        if force and original.source != Source.GITHUB:
            raise ValueError(f"--force applies to GitHub deliveries; {original.source} ones always run again")
        runs = [self._store.get_run(run_id) for run_id in original.run_ids]
        live = [run.id for run in runs if run is not None and not run.state.terminal]
        if live and not force:
            self._start(live)
            return Reply(202, {"outcome": "nudged", "runs": live})
        event = reparse(original)
        fresh = original.model_copy(
            update={"key": self._replay_key(key), "received_at": self._clock(), "outcome": "accepted", "run_ids": []}
        )
        handlers: dict[str, Callable[[Any, Delivery], Reply]] = {
            Source.GITHUB: lambda event, delivery: self.on_github(event, delivery, force=force),
            Source.WANDB: self.on_wandb,
            Source.DRIFT: self.drift,
            Source.SCHEDULE: self.schedule,
            Source.RETRAIN: self.retrain,
            Source.CLOUDBUILD: self.build,
            Source.VERTEX: self.vertex_job,
        }
        reply = handlers[original.source](event, fresh)
        return Reply(reply.status, {**reply.body, "key": fresh.key})

    def _replay_key(self, key: str) -> str:
        n = 1
        while self._store.get_delivery(effects.replay_delivery(key, n)) is not None:
            n += 1
        return effects.replay_delivery(key, n)

    def _duplicate(self, known: Delivery) -> Reply:
        return Reply(200, {"outcome": "duplicate", "original": known.outcome, "runs": known.run_ids})

    def _start(self, run_ids: list[str]) -> None:
        for run_id in run_ids:
            self._publish(StartRun(run_id=run_id))

    def _publish(self, command: Command) -> None:
        self._bus.publish(self._commands_topic, command.model_dump(), {"run_id": command.run_id})

    def _last_drift(self, pipeline: str, since: float) -> float | None:
        """When the newest drift run holding the cooldown started, among the pipeline's runs since `since`."""
        return cooldown_start(self._store.runs_since(pipeline, since))
