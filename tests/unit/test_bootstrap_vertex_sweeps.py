"""On Vertex AI the orchestrator trains with the CustomJob backend and sweeps as HyperparameterTuningJobs; on W&B
Launch it trains with queue items and sweeps as W&B sweeps whose scheduler runs on the same queue."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from relaunch import bootstrap
from relaunch.adapters.gcp.vertex_sweep import VertexSweeps
from relaunch.service.sweep_step import JobsAndSweeps
from relaunch.settings import Settings


def test_the_vertex_training_backend_runs_sweeps_as_tuning_jobs(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path / "home",
        pipelines_dir=tmp_path / "pipelines",
        training="vertex",
        gcp_project="p",
        vertex_api_endpoint="http://127.0.0.1:9",
    )
    app = bootstrap.App(settings)

    training = app.training

    assert isinstance(training, JobsAndSweeps) and training.jobs is app.backend
    assert isinstance(training.sweeps, VertexSweeps) and training.sweeps.training is app.backend
    assert training.sweeps.owns("projects/1/locations/us-central1/hyperparameterTuningJobs/7")
    assert not training.sweeps.owns("projects/1/locations/us-central1/customJobs/7")


def test_the_wandb_launch_backend_runs_sweeps_as_wandb_sweeps(tmp_path: Path) -> None:
    from relaunch.adapters.wandb.launch_sweep import WandbLaunchSweeps

    settings = Settings(
        home=tmp_path / "home",
        pipelines_dir=tmp_path / "pipelines",
        training="wandb",
        wandb_api_key=SecretStr("k" * 40),
        wandb_base_url="http://127.0.0.1:9",
        wandb_entity="acme",
        wandb_project="digits",
        wandb_launch_queue="q",
        wandb_launch_staging_bucket="gs://b",
    )
    app = bootstrap.App(settings)

    training = app.training

    assert isinstance(training, JobsAndSweeps) and training.jobs is app.backend
    assert isinstance(training.sweeps, WandbLaunchSweeps) and training.sweeps.owns("acme/digits/abcd1234")
