"""Service layer of every inbound path: dedupe, plan, persist to the inbox, publish, answer. No network calls.

Each delivery is written to the inbox (raw body, redacted headers, key, outcome) together with the runs it starts,
atomically, before the answer; a key already in the inbox is answered "duplicate" and does nothing else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from relaunch.pipelines.commands import COMMANDS_TOPIC, Command, StartRun
from relaunch.pipelines.evaluator import SUFFIX as EVALUATOR_SUFFIX
from relaunch.pipelines.ingest_events import plan_build, plan_drift, plan_schedule, plan_wandb
from relaunch.pipelines.ingest_github import plan_dispatch, plan_github
from relaunch.pipelines.ingest_replay import reparse
from relaunch.pipelines.model import Delivery
from relaunch.pipelines.plans import Plan
from relaunch.pipelines.spec import PipelineSpec
from relaunch.ports import Bus, RunStore
from relaunch.triggers.cloudbuild import BuildEvent
from relaunch.triggers.drift import DriftAlert
from relaunch.triggers.errors import TriggerError
from relaunch.triggers.github import GitHubEvent, redact_headers
from relaunch.triggers.retrain import RetrainRequest
from relaunch.triggers.scheduler import ScheduleTick
from relaunch.triggers.wandb import WandbEvent, WandbIgnored

log = logging.getLogger(__name__)
REPLAY_MARK = "#replay-"
RECENT_RUNS = 500  # how far back the drift cooldown looks for the pipeline's last drift run


@dataclass(frozen=True)
class Reply:
    """What the function answers: a status code and a JSON body."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)


class UnknownDelivery(LookupError):
    """No inbox row has this key."""


def inbound(source: str, key: str, headers: Mapping[str, str], body: bytes) -> Delivery:
    """An inbox row for a delivery as it arrived, secrets removed from its headers."""
    return Delivery(
        key=key, source=source, headers=redact_headers(headers), body=body.decode("utf-8", errors="replace")
    )


class IngestService:
    """Turns verified inbound events into inbox rows, runs and commands."""

    def __init__(
        self,
        store: RunStore,
        bus: Bus,
        specs: Callable[[], Mapping[str, PipelineSpec]],
        *,
        promote_alias: str = "production",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._bus = bus
        self._specs = specs
        self._promote_alias = promote_alias
        self._clock = clock

    # -- sources ---------------------------------------------------------------------------------------------

    def github(self, event: GitHubEvent, headers: Mapping[str, str], body: bytes) -> Reply:
        """Act on a verified GitHub delivery (bad dispatch inputs raise a 422 before anything is written)."""
        return self.on_github(event, inbound("github", f"github:{event.delivery_id}", headers, body))

    def on_github(self, event: GitHubEvent, delivery: Delivery) -> Reply:
        return self.accept(delivery, lambda: plan_github(event, self._specs(), delivery.key))

    def wandb(self, event: WandbEvent | WandbIgnored, headers: Mapping[str, str], body: bytes) -> Reply:
        """Act on an authenticated W&B automation delivery; W&B sends no id, the event's content is the key."""
        return self.on_wandb(event, inbound("wandb", event.dedupe_key, headers, body))

    def on_wandb(self, event: WandbEvent | WandbIgnored, delivery: Delivery) -> Reply:
        return self.accept(delivery, lambda: plan_wandb(event, self._specs(), delivery.key, self._promote_alias))

    def drift(self, alert: DriftAlert, delivery: Delivery) -> Reply:
        """Retrain the pipelines a drift alert names, as their drift policies allow."""
        now = self._clock()
        return self.accept(delivery, lambda: plan_drift(alert, self._specs(), delivery.key, self._last_drift, now))

    def schedule(self, tick: ScheduleTick, delivery: Delivery) -> Reply:
        """Retrain the pipeline a scheduler tick names."""
        return self.accept(delivery, lambda: plan_schedule(tick, self._specs(), delivery.key))

    def retrain(self, request: RetrainRequest, delivery: Delivery) -> Reply:
        """A manual retrain from the commands topic: the run a workflow_dispatch with the same inputs would start."""
        if request.request_id and not delivery.key.startswith("retrain:"):  # a replay keeps its own key
            delivery = delivery.model_copy(update={"key": f"retrain:{request.request_id}"})
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
        owner = (event.run_id or "").removesuffix(EVALUATOR_SUFFIX)
        return self.accept(delivery, lambda: plan_build(event, self._store.get_run(owner)))

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

    def accept(self, delivery: Delivery, plan: Callable[[], Plan]) -> Reply:
        """Plan, write the inbox row with its runs (a known key writes nothing), publish; the answer or "duplicate".

        The hot path is one write transaction and one publish. A process that dies between the two leaves runs in
        `received` that no command will start: the reconcile tick advances every run that has been quiet too long.
        """
        decided = plan()
        for command in decided.commands:  # idempotent nudges: sent before the row, so a crash resends them
            self._publish(command)
        row = delivery.model_copy(update={"outcome": decided.outcome, "run_ids": [r.id for r in decided.runs]})
        if not self._store.record_delivery(row, decided.runs):
            known = self._store.get_delivery(delivery.key)
            return self._duplicate(known) if known else Reply(200, {"outcome": "duplicate"})
        self._start(row.run_ids)
        return Reply(decided.status, decided.body)

    def replay(self, key: str) -> Reply:
        """Re-drive a stored delivery: nudge its runs still in flight, else run it again under `KEY#replay-N`."""
        original = self._store.get_delivery(key)
        if original is None:
            raise UnknownDelivery(f"no delivery {key!r} in the inbox (see `relaunch inbox`)")
        runs = [self._store.get_run(run_id) for run_id in original.run_ids]
        live = [run.id for run in runs if run is not None and not run.state.terminal]
        if live:
            self._start(live)
            return Reply(202, {"outcome": "nudged", "runs": live})
        event = reparse(original)
        fresh = original.model_copy(
            update={"key": self._replay_key(key), "received_at": self._clock(), "outcome": "accepted", "run_ids": []}
        )
        handlers: dict[str, Callable[[Any, Delivery], Reply]] = {
            "github": self.on_github,
            "wandb": self.on_wandb,
            "drift": self.drift,
            "schedule": self.schedule,
            "retrain": self.retrain,
            "cloudbuild": self.build,
        }
        reply = handlers[original.source](event, fresh)
        return Reply(reply.status, {**reply.body, "key": fresh.key})

    def _replay_key(self, key: str) -> str:
        base = key.split(REPLAY_MARK, 1)[0]
        n = 1
        while self._store.get_delivery(f"{base}{REPLAY_MARK}{n}") is not None:
            n += 1
        return f"{base}{REPLAY_MARK}{n}"

    def _duplicate(self, known: Delivery) -> Reply:
        return Reply(200, {"outcome": "duplicate", "original": known.outcome, "runs": known.run_ids})

    def _start(self, run_ids: list[str]) -> None:
        for run_id in run_ids:
            self._publish(StartRun(run_id=run_id))

    def _publish(self, command: Command) -> None:
        self._bus.publish(COMMANDS_TOPIC, command.model_dump(), {"run_id": command.run_id})

    def _last_drift(self, pipeline: str) -> float | None:
        runs = self._store.list_runs(pipeline=pipeline, limit=RECENT_RUNS)
        return max((r.created_at for r in runs if r.trigger.kind == "drift"), default=None)
