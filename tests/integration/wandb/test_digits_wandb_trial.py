"""examples/digits/train.py as a trial of a W&B sweep on Launch: W&B's scheduler passes the parameters as --NAME=VALUE
arguments (`${args}`) and Launch sets WANDB_RUN_ID; the trial writes its model under $RELAUNCH_TRIAL_OUTPUT/<run id>
(every trial of a sweep shares the same resource arguments, so AIP_MODEL_DIR would be one folder for all of them)
and reports its objective in its W&B run's summary, where the sweep backend reads it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.integration.wandb.test_digits_under_launch import train


def test_a_wandb_trial_writes_its_own_model_and_reports_val_accuracy_in_its_summary(tmp_path: Path) -> None:
    trials = tmp_path / "trials"
    done, wandb_dir = train(
        tmp_path,
        WANDB_LAUNCH="True",
        WANDB_RUN_ID="wbtrial1",
        WANDB_PROJECT="digits",
        WANDB_MODE="offline",
        RELAUNCH_TRIAL_OUTPUT=str(trials),
        RELAUNCH_SMOKE="0",
        CLOUD_ML_HP_METRIC_FILE=str(tmp_path / "hypertune" / "output.metrics"),
        args=["--C=0.5", "--max_iter=300"],
    )
    assert done.returncode == 0, done.stderr
    model = trials / "wbtrial1" / "model"
    assert (model / "model.joblib").is_file()
    assert json.loads((model / "training_summary.json").read_text())["params"]["C"] == 0.5
    assert not (tmp_path / "model").exists()  # AIP_MODEL_DIR, shared by every trial, is left alone
    # An offline run keeps its summary only in the run's transaction log (wandb 0.31 writes no wandb-summary.json
    # offline): the summary record holds the key, then the value as JSON text. The console line says "validation
    # accuracy", so the key is found only if the summary was written.
    [log] = (wandb_dir / "wandb").glob("offline-run-*-wbtrial1/run-wbtrial1.wandb")
    found = re.search(rb"val_accuracy[^0-9]{1,8}(0\.[0-9]+)", log.read_bytes())
    assert found is not None and 0.8 < float(found[1]) <= 1.0
    assert not (tmp_path / "hypertune").exists()  # Vertex's report: not a W&B trial's


def test_a_run_id_that_is_not_a_folder_name_is_refused_before_training(tmp_path: Path) -> None:
    trials = tmp_path / "a" / "trials"
    done, _ = train(
        tmp_path,
        WANDB_RUN_ID="../../escaped",
        RELAUNCH_TRIAL_OUTPUT=str(trials),
        args=["--C=0.5"],
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip() == "error: RELAUNCH_TRIAL_OUTPUT is set but WANDB_RUN_ID is not a W&B run id"
    assert not (tmp_path / "escaped").exists() and not trials.exists()
