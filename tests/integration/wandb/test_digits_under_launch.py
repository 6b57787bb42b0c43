"""examples/digits/train.py under W&B Launch: it starts the W&B run the launch agent waits for, and only there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "digits"


def train(tmp_path: Path, args: list[str] | None = None, **env: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    wandb_dir = tmp_path / "wandb"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "RELAUNCH_"))}
    base |= {"AIP_MODEL_DIR": str(tmp_path / "model"), "RELAUNCH_SMOKE": "1", "RELAUNCH_RUN_ID": "run-7"}
    base |= {"WANDB_DIR": str(wandb_dir), "WANDB_CONFIG_DIR": str(tmp_path / "config"), "WANDB_SILENT": "true"}
    base |= {"WANDB_ERROR_REPORTING": "false", "NETRC": str(tmp_path / "netrc"), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "train.py", *(args or [])],
        cwd=EXAMPLE,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=240,
    )
    return done, wandb_dir


def test_a_launch_job_starts_the_run_the_agent_named(tmp_path: Path) -> None:
    # What W&B's agent sets (wandb/sdk/launch/_project_spec.py get_env_vars_dict); offline keeps it on this machine.
    done, wandb_dir = train(
        tmp_path, WANDB_LAUNCH="True", WANDB_RUN_ID="wbrun7", WANDB_PROJECT="digits", WANDB_MODE="offline"
    )
    assert done.returncode == 0, done.stderr
    assert [p.name.rsplit("-", 1)[1] for p in (wandb_dir / "wandb").glob("offline-run-*")] == ["wbrun7"]
    assert (tmp_path / "model" / "model.joblib").is_file()


def test_outside_launch_no_wandb_run_is_started(tmp_path: Path) -> None:
    done, wandb_dir = train(tmp_path, WANDB_MODE="offline")
    assert done.returncode == 0, done.stderr
    assert not wandb_dir.exists()
