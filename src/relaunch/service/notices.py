"""Status posts (GitHub status and check, deployment, Slack, all through the Notifier), each once per run and key.

The key is a step of the store's effect ledger (see domain/effects): a step re-run after a crash or a redelivered
command posts nothing twice. A failed post is logged and recorded all the same: notifications never block a run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from relaunch.domain.model import Notification, PipelineRun, Stage, StatusState
from relaunch.domain.ports import EffectLedger, Notifier

log = logging.getLogger(__name__)


def status_note(
    run: PipelineRun,
    stage: Stage,
    state: StatusState,
    description: str,
    *,
    endpoint: str | None,
    model_version: str | None,
    report: str | None = None,
    reasons: Sequence[str] = (),
) -> Notification:
    """What a run's stage reports, with the trigger's fields the notifiers address and summarise it by. Pure."""
    return Notification(
        run_id=run.id,
        pipeline=run.pipeline,
        repo=run.trigger.repo,
        sha=run.trigger.sha,
        stage=stage,
        state=state,
        description=description,
        report_markdown=report,
        trigger_kind=run.trigger.kind,
        ref=run.trigger.ref,
        evaluate_only=run.trigger.evaluate_only,
        endpoint=endpoint,
        model_version=model_version,
        reasons=list(reasons),
        pr_number=run.trigger.pr_number,
        decision=run.decision if stage == "gate" else None,  # the pull request report renders it
        run_created_at=run.created_at,
    )


class Notices:
    """Sends notifications through the Notifier, once per (run, key) in the store's effect ledger."""

    def __init__(self, store: EffectLedger, notifier: Notifier) -> None:
        self.store, self.notifier = store, notifier

    def post(self, run_id: str, key: str, note: Callable[[], Notification]) -> None:
        """Send the notification `note` builds unless `key` was sent for the run (then nothing is built)."""
        if self.store.get_effect(run_id, key) is not None:
            return
        self._deliver(note(), key)

    def send(self, note: Notification, key: str) -> None:
        """Send `note` unless `key` was sent for its run."""
        self.post(note.run_id, key, lambda: note)

    def _deliver(self, note: Notification, key: str) -> None:
        try:
            self.notifier.notify(note)
        except Exception:  # notifications never block a run
            log.exception("notifier failed for run %s (%s %s)", note.run_id, note.stage, note.state)
        self.store.put_effect(note.run_id, key, {"description": note.description})
