"""Job requests for training and evaluation, and Vertex AI's environment contract for a job's outputs. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from relaunch.domain import effects
from relaunch.domain.evaluator import NoEvaluator, choose
from relaunch.domain.model import JobRequest, PipelineRun
from relaunch.domain.spec import PipelineSpec
from relaunch.domain.tracking import tracking_environment

# What Vertex AI passes to a CustomJob's containers when its baseOutputDirectory is set: each a folder under the
# base, with a trailing slash (https://cloud.google.com/vertex-ai/docs/reference/rest/v1/CustomJobSpec). Every
# backend gives a job exactly these, from JobRequest.output_dir; a request never sets them itself.
OUTPUT_VARIABLES = {"AIP_MODEL_DIR": "model", "AIP_CHECKPOINT_DIR": "checkpoints", "AIP_TENSORBOARD_LOG_DIR": "logs"}


@dataclass(frozen=True)
class RunPaths:
    """Where a run's artifacts live (local paths or gs:// URIs): the training job's output base, the evaluation's."""

    output: str
    evaluation: str

    @property
    def model(self) -> str:
        """The folder the trained model is in: the one AIP_MODEL_DIR names (without Vertex's trailing slash)."""
        return f"{self.output.rstrip('/')}/{OUTPUT_VARIABLES['AIP_MODEL_DIR']}"


def output_environment(output_dir: str) -> dict[str, str]:
    """The AIP_* variables Vertex AI gives a job whose base output directory is `output_dir`."""
    base = output_dir.rstrip("/")
    return {name: f"{base}/{folder}/" for name, folder in OUTPUT_VARIABLES.items()}


def check_env(env: Mapping[str, str]) -> None:
    """ValueError naming a variable of `env` that the backend derives from the output base, so none is shadowed."""
    shadowed = sorted(set(env) & set(OUTPUT_VARIABLES))
    if shadowed:
        raise ValueError(f"env.{shadowed[0]}: the backend sets it from the job's output directory; a job may not")


def train_request(run: PipelineRun, spec: PipelineSpec, image: str, paths: RunPaths) -> JobRequest:
    """The training job: the spec's command, writing under the run's output base (Vertex sets AIP_* from it)."""
    return JobRequest(
        key=effects.job(run.id, "train"),
        run_id=run.id,
        step="train",
        image=image,
        command=list(spec.train.command),
        env={**spec.train.env, **_run_env(run), **tracking_environment(spec, run.id, paths.output)},
        priority=spec.priority + run.trigger.priority,
        max_retries=spec.train.max_retries,
        machine=spec.train.machine,
        timeout_s=spec.train.timeout_s,
        output_dir=paths.output,
    )


def eval_request(run: PipelineRun, spec: PipelineSpec, champion_uri: str | None, paths: RunPaths) -> JobRequest:
    """The evaluation job, in the evaluator's image: candidate and champion scored on the same held-out data.

    `champion_uri` must be a read-only input (a copy in the run's own folder, or a URI the job can only read),
    never the registry's own folder.
    """
    env = {
        **spec.evaluate.env,
        "RELAUNCH_CANDIDATE_DIR": paths.model,
        "RELAUNCH_CHAMPION_DIR": champion_uri or "",
        "RELAUNCH_EVAL_DIR": paths.evaluation,
        **_run_env(run),
        "RELAUNCH_EVALUATOR_SHA": run.evaluator_sha or run.trigger.sha or "",
        **tracking_environment(spec, run.id, paths.output),
    }
    return JobRequest(
        key=effects.job(run.id, "evaluate"),
        run_id=run.id,
        step="evaluate",
        image=evaluator_image(run, spec),
        command=list(spec.evaluate.command),
        env=env,
        priority=spec.priority + run.trigger.priority + 1,  # finishing a started run beats starting a new one
        max_retries=spec.evaluate.max_retries,
        machine=spec.evaluate.machine,
        timeout_s=spec.evaluate.timeout_s,
    )


def evaluator_image(run: PipelineRun, spec: PipelineSpec) -> str:
    """The image the evaluation runs in; NoEvaluator rather than ever falling back to a candidate it must not trust."""
    if run.evaluator_image:
        return run.evaluator_image
    if choose(run, spec).separate:
        raise NoEvaluator(f"run {run.id}: its evaluator is not built yet, and the candidate's image may not stand in")
    return run.image or ""


def _run_env(run: PipelineRun) -> dict[str, str]:
    return {
        "RELAUNCH_RUN_ID": run.id,
        "RELAUNCH_PIPELINE": run.pipeline,
        "RELAUNCH_COMMIT_SHA": run.trigger.sha or "",
    }
