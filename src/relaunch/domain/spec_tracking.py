"""Experiment tracking a pipeline asks of its jobs (the spec's `tracking:`): W&B, offline, in the run's own folder.

Offline because a job runs code that a push brought and so never sees a secret (no WANDB_API_KEY): wandb writes the
run to files (`<run folder>/wandb/offline-run-*`), which need no account and no network, and which relaunch's own
code, holding the key, uploads after the evaluation when the spec says `online` (service/tracking_step.py). Opt-in
because wandb costs a job an import and a service process (about 1.5 s a job, see README): pipelines that do not ask
for it give their jobs no W&B variable, and the example then never imports wandb. What the jobs get for it is
domain/tracking.py.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TrackingSpec(BaseModel):
    """What the pipeline's jobs log, and where."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    wandb: Literal["off", "offline", "online"] = Field(
        default="off",
        description="offline: the jobs log a W&B run each (metrics, the model as an artifact, the evaluation naming "
        "it) to files in the run's folder, without a key; online: the same, then relaunch (which holds the W&B key, "
        "RELAUNCH_WANDB_API_KEY) uploads those runs after the evaluation and links the evaluation to the model "
        "version, which promotion then aliases; off: no W&B at all",
    )
