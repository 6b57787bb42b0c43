"""Part of the composition root: what a run's jobs left in its folder that people read (`runs show`, `lineage`).

The data version the training recorded, and the W&B runs the jobs logged offline. A job wrote these files, and a job
runs code that a push brought: each read is bounded and checked, and nothing here decides anything; it is shown.
Only the embedded profile's local run folders are read (a gs:// root is left to W&B once synced).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from relaunch.adapters.wandb.offline_runs import OfflineRun

SUMMARY = ("model", "training_summary.json")  # written by the digits example's train.py beside its model
MAX_SUMMARY_BYTES = 64 * 1024
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_DATA_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,99}")


def run_folder(artifact_root: str, run_id: str) -> Path | None:
    """The run's local folder under the artifact root (None: a gs:// root, or an id that is no plain folder name)."""
    if artifact_root.startswith("gs://") or not _RUN_ID.fullmatch(run_id) or run_id in {".", ".."}:
        return None
    return Path(artifact_root) / "runs" / run_id


def data_version(artifact_root: str, run_id: str) -> str | None:
    """The data version the run's training recorded in its summary; None when absent, too big or malformed."""
    folder = run_folder(artifact_root, run_id)
    path = folder.joinpath(*SUMMARY) if folder else None
    if path is None or not path.is_file() or path.is_symlink():
        return None
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_SUMMARY_BYTES + 1)
        found = json.loads(raw) if len(raw) <= MAX_SUMMARY_BYTES else None
    except (OSError, ValueError):
        return None
    value = found.get("data_version") if isinstance(found, dict) else None
    return value if isinstance(value, str) and _DATA_VERSION.fullmatch(value) else None


def wandb_folder(artifact_root: str, run_id: str) -> Path | None:
    """Where the run's jobs logged W&B offline (`<run folder>/wandb`), when that folder exists."""
    folder = run_folder(artifact_root, run_id)
    found = folder / "wandb" if folder else None
    return found if found is not None and found.is_dir() and not found.is_symlink() else None


def wandb_runs(artifact_root: str, run_id: str) -> list[OfflineRun]:
    """The offline W&B runs the run's jobs logged, oldest first; ValueError (one line) for a file that is not one."""
    folder = wandb_folder(artifact_root, run_id)
    if folder is None:
        return []
    from relaunch.adapters.wandb.offline_runs import offline_runs

    return offline_runs(folder)
