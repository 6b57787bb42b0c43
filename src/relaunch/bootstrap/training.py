"""The training backend with its sweeps: each training backend's sweep backend (part of the composition root).

Optuna on the local agent (imported with the first sweep), HyperparameterTuningJobs on Vertex AI, W&B sweeps whose
scheduler runs on the Launch queue. A test's stand-in for the backend keeps its own jobs and has no sweeps: a spec
with `sweep:` then fails its run, saying so.
"""

from __future__ import annotations

from pathlib import Path

from relaunch.domain.ports import TrainingBackend
from relaunch.service.sweep_step import JobsAndSweeps


def with_sweeps(kind: str, backend: TrainingBackend, sweeps_dir: Path) -> TrainingBackend:
    """`backend` (of adapter `kind`) with the sweeps of the same platform; `sweeps_dir` keeps the local studies."""
    if kind == "vertex":
        from relaunch.adapters.gcp.vertex_sweep import VertexSweeps, vertex_training

        if (vertex := vertex_training(backend)) is not None:
            return JobsAndSweeps(vertex, VertexSweeps(vertex))
    if kind == "wandb":
        from relaunch.adapters.wandb.launch import WandbLaunchBackend
        from relaunch.adapters.wandb.launch_sweep import WandbLaunchSweeps

        if isinstance(backend, WandbLaunchBackend):
            return JobsAndSweeps(backend, WandbLaunchSweeps(backend))
    if kind != "local":
        return backend
    from relaunch.adapters.local.sweeps_lazy import LazySweeps

    return JobsAndSweeps(backend, LazySweeps(backend, sweeps_dir))
