"""The variables a job logs to W&B by, when its pipeline asks for tracking (domain/spec_tracking.py). Pure."""

from __future__ import annotations

from relaunch.domain.spec import PipelineSpec

ARTIFACT_VARIABLE = "RELAUNCH_WANDB_ARTIFACT"  # the collection the job logs its model to


def tracking_environment(spec: PipelineSpec, run_id: str, run_folder: str) -> dict[str, str]:
    """The variables a job of `spec`'s run `run_id` logs to W&B by (none when tracking is off).

    The names are those W&B events about this pipeline carry (`source.wandb`), so the artifact the job logs is the
    collection that promotion moves aliases in; without a W&B source, the pipeline's own name.
    """
    if spec.tracking.wandb == "off":
        return {}
    folder = f"{run_folder.rstrip('/')}/wandb"
    source = spec.source.wandb
    entity, project = wandb_target(spec)
    env = {
        "WANDB_MODE": "offline",
        "WANDB_DIR": run_folder.rstrip("/"),  # wandb makes its `wandb/` folder under it
        # The sandbox hides HOME; wandb's settings, cache and staging stay with the run.
        "WANDB_CONFIG_DIR": f"{folder}/.config",
        "WANDB_CACHE_DIR": f"{folder}/.cache",
        "WANDB_DATA_DIR": f"{folder}/.data",
        "WANDB_SILENT": "true",
        "WANDB_PROJECT": project,
        "WANDB_RUN_GROUP": run_id,
        ARTIFACT_VARIABLE: source.collection if source else f"{spec.name}-model",
    }
    if entity is not None:
        env["WANDB_ENTITY"] = entity
    return env


def wandb_target(spec: PipelineSpec) -> tuple[str | None, str]:
    """The W&B entity (None: the key's default) and project the pipeline's jobs log to, and relaunch syncs to."""
    source = spec.source.wandb
    return (source.entity, source.project) if source else (None, spec.name)


def model_alias(run_id: str) -> str:
    """The alias the training job gives the model version it logs (examples/digits/tracking.py makes the same one):
    offline there is no vN yet, so relaunch finds the version by it once synced."""
    return f"relaunch-{run_id}"
