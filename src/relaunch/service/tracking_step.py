"""After the evaluation, relaunch's own code uploads the W&B runs the jobs logged offline (spec `tracking.wandb:
online`), and W&B's aliases follow the run onto the model version the training logged.

Once per run (the effect ledger's `wandb-sync`): a redelivered command uploads nothing twice. A sync that fails never
fails the run: it is noted on the timeline once, and tried again on the run's next command (the gate, each rollout
look) until it succeeds. What it uploaded is on the timeline: the W&B run URLs (`wandb_run_url`, which the dashboard
links) and the model version, which `synced_artifact` hands to the alias code of artifact_pin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from relaunch.domain.effects import Effect
from relaunch.domain.jobs import RunPaths
from relaunch.domain.model import PipelineRun, TimelineEntry
from relaunch.domain.ports import ArtifactSource, StepStore, TransientError
from relaunch.domain.spec import PipelineSpec
from relaunch.domain.tracking import model_alias, wandb_target
from relaunch.domain.tracking_sync import TrackingSync as TrackingSync  # re-exported: the orchestrator's Deps
from relaunch.service.artifact_pin import move_aliases

log = logging.getLogger(__name__)


def synced_artifact(store: StepStore, run_id: str) -> str | None:
    """The model version (entity/project/name:vN) the run's sync found, once it has succeeded."""
    done = store.get_effect(run_id, Effect.WANDB_SYNC)
    found = done.get("artifact") if done else None
    return found if isinstance(found, str) else None


class TrackingStep:
    """Syncs a run's offline W&B runs once, and moves W&B aliases for the runs that have a version to move them on."""

    def __init__(
        self,
        store: StepStore,
        tracking: TrackingSync | None,
        paths: Callable[[PipelineRun], RunPaths],
        promote_alias: str,
    ) -> None:
        self.store = store
        self.tracking = tracking
        self.paths = paths
        self.promote_alias = promote_alias

    def sync(self, run: PipelineRun, spec: PipelineSpec) -> None:
        """Upload the run's offline W&B runs, once, when the spec asks for it; a failure is noted, never raised."""
        if spec.tracking.wandb != "online" or self.store.get_effect(run.id, Effect.WANDB_SYNC) is not None:
            return
        if self.tracking is None:
            self._failed(run.id, "no W&B key is configured (RELAUNCH_WANDB_API_KEY), so the runs stay offline")
            return
        entity, project = wandb_target(spec)
        folder = f"{self.paths(run).output.rstrip('/')}/wandb"
        try:
            synced = self.tracking.sync(folder, entity=entity, project=project, model_alias=model_alias(run.id))
        except (TransientError, ValueError, OSError) as exc:
            self._failed(run.id, str(exc))
            return
        urls = synced.run_urls
        data = {"wandb_runs": urls, "artifact": synced.artifact}
        if url := urls.get("evaluate") or urls.get("train") or next(iter(urls.values()), None):
            data["wandb_run_url"] = url
        what = f"; model {synced.artifact}" if synced.artifact else ""
        message = f"synced {len(urls)} W&B run(s){what}" if urls else "no W&B run to sync"
        self.store.append_timeline(run.id, TimelineEntry(kind="info", message=message, data=data))
        self.store.put_effect(run.id, Effect.WANDB_SYNC, {"artifact": synced.artifact, "run_urls": urls})

    def follow(self, run: PipelineRun, spec: PipelineSpec, artifacts: Callable[[], ArtifactSource] | None) -> None:
        """W&B's aliases follow the run's environments and promotion: on the version a W&B event named (through
        `artifacts`, the orchestrator's artifact source), or on the one its own training logged and relaunch synced."""
        if run.trigger.artifact and artifacts is not None:
            move_aliases(self.store, artifacts, run, spec, self.promote_alias)
            return
        self.sync(run, spec)  # a sync that failed at the gate is tried again
        synced, tracking = synced_artifact(self.store, run.id), self.tracking
        if synced is not None and tracking is not None:
            pinned = run.model_copy(update={"trigger": run.trigger.model_copy(update={"artifact": synced})})
            move_aliases(self.store, lambda: tracking, pinned, spec, self.promote_alias)

    def _failed(self, run_id: str, why: str) -> None:
        log.warning("W&B sync of run %s failed: %s", run_id, why)
        if self.store.get_effect(run_id, Effect.WANDB_SYNC_FAILED) is None:
            note = f"W&B runs not synced (tried again on the run's next step): {why}"
            self.store.append_timeline(run_id, TimelineEntry(kind="warning", message=note))
            self.store.put_effect(run_id, Effect.WANDB_SYNC_FAILED, {"why": why})
