"""Job requests for training and evaluation, with Vertex's environment contract. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from relaunch.pipelines.model import JobRequest, PipelineRun
from relaunch.pipelines.spec import PipelineSpec


@dataclass(frozen=True)
class RunPaths:
    """Where a run's artifacts live (local paths or gs:// URIs)."""

    model: str
    checkpoints: str
    tensorboard: str
    evaluation: str


def train_request(run: PipelineRun, spec: PipelineSpec, image: str, paths: RunPaths) -> JobRequest:
    """The training job: the spec's command with AIP_* variables, as Vertex AI sets them for a CustomJob."""
    env = {
        **spec.train.env,
        "AIP_MODEL_DIR": paths.model,
        "AIP_CHECKPOINT_DIR": paths.checkpoints,
        "AIP_TENSORBOARD_LOG_DIR": paths.tensorboard,
        **_run_env(run),
    }
    return JobRequest(
        key=f"{run.id}:train",
        run_id=run.id,
        step="train",
        image=image,
        command=list(spec.train.command),
        env=env,
        priority=spec.priority + run.trigger.priority,
        max_retries=spec.train.max_retries,
        machine=spec.train.machine,
        timeout_s=spec.train.timeout_s,
    )


def eval_request(run: PipelineRun, spec: PipelineSpec, champion_uri: str | None, paths: RunPaths) -> JobRequest:
    """The evaluation job: candidate and champion scored on the same held-out data, outputs to `evaluation`."""
    env = {
        **spec.evaluate.env,
        "RELAUNCH_CANDIDATE_DIR": paths.model,
        "RELAUNCH_CHAMPION_DIR": champion_uri or "",
        "RELAUNCH_EVAL_DIR": paths.evaluation,
        **_run_env(run),
    }
    return JobRequest(
        key=f"{run.id}:evaluate",
        run_id=run.id,
        step="evaluate",
        image=run.image or "",
        command=list(spec.evaluate.command),
        env=env,
        priority=spec.priority + run.trigger.priority + 1,  # finishing a started run beats starting a new one
        max_retries=spec.evaluate.max_retries,
        machine=spec.evaluate.machine,
        timeout_s=spec.evaluate.timeout_s,
    )


def _run_env(run: PipelineRun) -> dict[str, str]:
    return {
        "RELAUNCH_RUN_ID": run.id,
        "RELAUNCH_PIPELINE": run.pipeline,
        "RELAUNCH_COMMIT_SHA": run.trigger.sha or "",
    }
