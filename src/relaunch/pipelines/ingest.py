"""Service layer of the webhook path: dedupe, route, persist to the inbox, publish, answer. No network calls."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from relaunch.pipelines.commands import COMMANDS_TOPIC, StartRun
from relaunch.pipelines.model import Delivery, PipelineRun, Trigger
from relaunch.pipelines.routing import PushFacts, route_push, run_id_for
from relaunch.pipelines.spec import PipelineSpec
from relaunch.ports import Bus, RunStore
from relaunch.triggers.github import GitHubEvent, PingEvent, PushEvent, redact_headers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    """What the function answers: a status code and a JSON body."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PushIntent:
    """A push, reduced to what starting runs needs (built from the trigger parser's event)."""

    delivery_key: str
    facts: PushFacts
    sha: str
    ref: str
    clone_url: str | None
    actor: str | None
    message: str = ""


class IngestService:
    """Turns verified inbound events into inbox rows, runs and commands."""

    def __init__(self, store: RunStore, bus: Bus, specs: Callable[[], Mapping[str, PipelineSpec]]) -> None:
        self._store = store
        self._bus = bus
        self._specs = specs

    def github(self, event: GitHubEvent, headers: Mapping[str, str], body: bytes) -> Reply:
        """Act on a verified GitHub delivery."""
        delivery = Delivery(
            key=f"github:{event.delivery_id}",
            source="github",
            headers=redact_headers(headers),
            body=body.decode("utf-8", errors="replace"),
        )
        if isinstance(event, PushEvent):
            return self.push(_push_intent(event, delivery.key), delivery)
        if isinstance(event, PingEvent):
            return self.record_only(delivery, ping_reply(event.repo, self._specs()))
        reason = getattr(event, "reason", None) or f"{type(event).__name__} is not acted on yet"
        return self.record_only(delivery, Reply(202, {"outcome": "ignored", "reason": reason}))

    def push(self, intent: PushIntent, delivery: Delivery) -> Reply:
        """Start one run per pipeline watching this push; answer 202 with the runs and the skips."""
        replay = self._replay_if_known(delivery.key)
        if replay:
            return replay
        routing = route_push(self._specs().values(), intent.facts)
        runs = [self._new_run(spec, intent) for spec in routing.matched]
        outcome = "accepted" if runs else "skipped"
        body = {"outcome": outcome, "runs": [r.id for r in runs], "skipped": routing.skipped}
        if not routing.matched and not routing.skipped:
            body["reason"] = f"no pipeline watches {intent.facts.repo}"
        delivery = delivery.model_copy(update={"outcome": outcome, "run_ids": [r.id for r in runs]})
        if not self._store.record_delivery(delivery, runs):
            return self._replay_if_known(delivery.key) or Reply(200, {"outcome": "duplicate"})
        self._publish_starts(delivery.key, [r.id for r in runs])
        return Reply(202, body)

    def record_only(self, delivery: Delivery, reply: Reply) -> Reply:
        """Keep a delivery that starts nothing (ping, ignored events) in the inbox, deduped like the rest."""
        known = self._store.get_delivery(delivery.key)
        if known is not None:
            return Reply(200, {"outcome": "duplicate", "original": known.outcome})
        self._store.record_delivery(delivery.model_copy(update={"outcome": str(reply.body.get("outcome"))}), [])
        return reply

    def _replay_if_known(self, key: str) -> Reply | None:
        known = self._store.get_delivery(key)
        if known is None:
            return None
        if known.run_ids and not known.outcome.endswith("+published"):
            self._publish_starts(key, known.run_ids)  # the first attempt died before publishing: finish its job
        return Reply(200, {"outcome": "duplicate", "runs": known.run_ids})

    def _publish_starts(self, key: str, run_ids: list[str]) -> None:
        for run_id in run_ids:
            self._bus.publish(COMMANDS_TOPIC, StartRun(run_id=run_id).model_dump(), {"run_id": run_id})
        if run_ids:
            self._store.set_delivery_outcome(key, "accepted+published")

    def _new_run(self, spec: PipelineSpec, intent: PushIntent) -> PipelineRun:
        trigger = Trigger(
            kind="push",
            delivery_key=intent.delivery_key,
            repo=intent.facts.repo,
            ref=intent.ref,
            sha=intent.sha,
            clone_url=spec.source.clone_url or intent.clone_url,
            actor=intent.actor,
            reason=intent.message[:200],
        )
        return PipelineRun(id=run_id_for(spec.name, intent.delivery_key), pipeline=spec.name, trigger=trigger)


def _push_intent(event: PushEvent, key: str) -> PushIntent:
    facts = PushFacts(
        repo=event.repo,
        branch=event.branch,
        tag=event.tag,
        deleted=event.deleted,
        changed_paths=event.changed_paths,
    )
    return PushIntent(
        delivery_key=key,
        facts=facts,
        sha=event.sha,
        ref=event.ref,
        clone_url=event.clone_url,
        actor=event.pusher,
        message=event.head_message or "",
    )


def ping_reply(repo: str | None, specs: Mapping[str, PipelineSpec]) -> Reply:
    """A short summary of what this hook will act on."""
    watching = [s.name for s in specs.values() if repo and s.source.watches_repo(repo)]
    summary = {s: {"branches": specs[s].source.branches, "paths": specs[s].source.paths} for s in watching}
    return Reply(200, {"outcome": "pong", "repo": repo, "pipelines": summary})
