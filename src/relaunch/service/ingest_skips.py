"""A pipeline that ingest skipped, found again from the id its "skipped" status was posted under. No network calls.

A push that changes no watched path of a pipeline starts no run of it, but posts a "skipped" commit status (a branch
protection rule waits for it) and records the training saved; both are keyed by the id the run would have had
(`run_id_for(pipeline, delivery key)`), so a redelivery posts nothing twice. That id is where a user looks next
(`relaunch runs show ID`), so it must lead somewhere: the delivery that skipped the pipeline is found in the inbox by
deriving each recent key's id again, and its row says why. Nothing new is written on the hot path for this.
"""

from __future__ import annotations

from dataclasses import dataclass

from relaunch.domain.model import Delivery
from relaunch.domain.ports import Inbox
from relaunch.domain.routing import run_id_for

RECENT_DELIVERIES = 5000  # how far back `runs show` looks for the delivery that skipped a pipeline
SKIPPED = "skipped: "


@dataclass(frozen=True)
class SkippedAtIngest:
    """A pipeline a delivery skipped at ingest: the id it was reported under, the delivery and the reason."""

    run_id: str
    pipeline: str
    delivery: Delivery
    reason: str

    @property
    def summary(self) -> str:
        """One line for `relaunch runs show`: what happened, and where the delivery is."""
        return (
            f"{self.run_id}  {self.pipeline}  skipped at ingest: {self.reason} (no run was started; delivery "
            f"{self.delivery.key}, `relaunch inbox --source {self.delivery.source}`)"
        )


def skipped_at_ingest(store: Inbox, run_id: str, recent: int = RECENT_DELIVERIES) -> SkippedAtIngest | None:
    """The skip reported under `run_id`, from the recent deliveries of the inbox; None if no delivery derives it."""
    pipeline, dash, _ = run_id.rpartition("-")
    if not (pipeline and dash):
        return None
    for delivery in store.list_deliveries(recent):
        if run_id_for(pipeline, delivery.key) == run_id and run_id not in delivery.run_ids:
            return SkippedAtIngest(run_id, pipeline, delivery, skip_reason(delivery.outcome, pipeline))
    return None


def skip_reason(outcome: str, pipeline: str) -> str:
    """Why the inbox row `outcome` says `pipeline` was skipped ("skipped: a: why; b: why", after any "accepted; ")."""
    _, found, skipped = outcome.partition(SKIPPED)
    for part in skipped.split("; ") if found else ():
        name, colon, why = part.partition(": ")
        if colon and name == pipeline:
            return why
    return outcome
