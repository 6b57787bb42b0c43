"""W&B logging, when the pipeline asks for it: relaunch then sets RELAUNCH_WANDB_ARTIFACT and WANDB_MODE=offline.

Without those variables nothing here imports wandb (an import and a service process cost a job about a second).
Offline, the run is written to $WANDB_DIR/wandb/offline-run-*; relaunch never gives a job a W&B key, and W&B's
offline mode refuses `use_artifact`, so the evaluation names the model it scored in its config (collection, the
training's per-run alias, content digest, producing run), which is what relaunch links when it syncs the runs.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from storage import local_dir

ARTIFACT = "RELAUNCH_WANDB_ARTIFACT"
FOLDERS = ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def collection() -> str | None:
    """The artifact collection the model is logged to, when tracking is on; a bad name stops the job."""
    name = os.environ.get(ARTIFACT)
    if name is not None and not _NAME.fullmatch(name):
        sys.exit(f"error: {ARTIFACT} must be an artifact name, got {name[:60]!r}")
    return name


def run_alias() -> str:
    """The alias that finds this relaunch run's model version once synced (offline there is no vN yet)."""
    return f"relaunch-{os.environ.get('RELAUNCH_RUN_ID') or 'manual'}"


def start(job_type: str, config: dict[str, Any]) -> Any | None:
    """A W&B run of this job (entity, project, group and mode from the environment), or None when tracking is off."""
    if collection() is None:
        return None
    try:
        import wandb
    except ImportError:
        sys.exit("error: the pipeline asks for W&B tracking but wandb is not installed: add it to requirements.txt")
    for name in FOLDERS:  # a gs:// folder (Vertex) is written through its FUSE mount
        if os.environ.get(name):
            os.environ[name] = str(local_dir(name, os.environ[name]))
    Path(os.environ.get("WANDB_DIR") or ".").mkdir(parents=True, exist_ok=True)
    name = f"{os.environ.get('RELAUNCH_RUN_ID') or 'manual'}-{job_type}"
    return wandb.init(job_type=job_type, name=name, config=config)


def log_model(run: Any, model_dir: Path, metadata: dict[str, Any]) -> None:
    """Log the model folder as the next version of the collection, with where it came from in its metadata."""
    import wandb

    artifact = wandb.Artifact(str(collection()), type="model", metadata=metadata)
    artifact.add_dir(str(model_dir))
    run.log_artifact(artifact, aliases=[run_alias()])


def model_reference(model_dir: Path, logged_by: str | None) -> dict[str, Any]:
    """What the evaluation scored, as W&B names it: the collection, the per-run alias, the content digest, the
    training run (the digest is W&B's own over the same files, so it equals the logged version's)."""
    import wandb

    artifact = wandb.Artifact(str(collection()), type="model")
    artifact.add_dir(str(model_dir), policy="immutable")  # only its digest is wanted: no staging copy
    entity, project = os.environ.get("WANDB_ENTITY"), os.environ.get("WANDB_PROJECT")
    prefix = "/".join(p for p in (entity, project) if p)
    return {
        "name": f"{prefix}/{collection()}" if prefix else str(collection()),
        "alias": run_alias(),
        "digest": artifact.digest,
        "logged_by": logged_by,
    }
