"""The port through which relaunch's own code uploads what a run's jobs logged offline (spec `tracking.wandb: online`).

A job runs code that a push brought and never sees a W&B key, so it logs offline into the run's folder; after the
evaluation, trusted code holding the key uploads those runs, links the evaluation to the model version it scored, and
later moves the environment aliases onto that version. Separate from ports.py, which is at its size limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class SyncedTracking:
    """What a sync uploaded: each job's run page (by job type) and the model version the training logged."""

    run_urls: dict[str, str] = field(default_factory=dict)
    artifact: str | None = None  # entity/project/collection:vN, or None when no job logged a model


class TrackingSync(Protocol):
    """Uploads a run's offline W&B runs, and points aliases at the model versions they logged."""

    def sync(self, folder: str, *, entity: str | None, project: str, model_alias: str) -> SyncedTracking:
        """Upload the offline runs under `folder` (the run's `wandb/`) to `entity`/`project` (entity None: the key's
        own), find the model version the training logged under `model_alias`, and link the evaluation to it.

        ValueError when the files or the server refuse it for good; TransientError when a retry may help. Uploading
        the same runs again adds nothing new (W&B's runs and versions are keyed by their ids and digests).
        """

    def set_alias(self, ref: str, alias: str) -> None:
        """Point `alias` at the concrete version `ref` (entity/project/name:vN); idempotent."""
