"""examples/digits/train.py as a Vertex AI tuning trial: parameters as --NAME=VALUE arguments, the objective reported
as cloudml-hypertune reports it (a JSON line in $CLOUD_ML_HP_METRIC_FILE, /tmp/hypertune/output.metrics by default)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits"


def train(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RELAUNCH_TRIAL", "CLOUD_ML", "AIP_"))},
        "PYTHONDONTWRITEBYTECODE": "1",
        "AIP_MODEL_DIR": str(tmp_path / "3" / "model"),
        "CLOUD_ML_TRIAL_ID": "3",
        "CLOUD_ML_HP_METRIC_FILE": str(tmp_path / "hypertune" / "output.metrics"),
    }
    command = [sys.executable, "train.py", *args]
    return subprocess.run(command, cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_a_vertex_trial_reads_its_arguments_and_reports_as_hypertune_does(tmp_path: Path) -> None:
    done = train(tmp_path, "--C=0.5", "--max_iter=300")

    assert done.returncode == 0, done.stderr
    [line] = (tmp_path / "hypertune" / "output.metrics").read_text().splitlines()
    report = json.loads(line)
    assert set(report) == {"timestamp", "trial", "val_accuracy", "global_step", "checkpoint_path"}
    assert report["trial"] == "3" and report["global_step"] == "1"
    assert 0.8 < float(report["val_accuracy"]) <= 1.0  # hypertune writes the value as a string
    summary = json.loads((tmp_path / "3" / "model" / "training_summary.json").read_text())
    assert summary["params"]["C"] == 0.5 and summary["params"]["max_iter"] == 300
    assert (tmp_path / "3" / "model" / "model.joblib").is_file()


def test_a_bad_trial_argument_is_a_one_line_error(tmp_path: Path) -> None:
    unknown = train(tmp_path, "--C=0.5", "--gamma=2")
    not_a_number = train(tmp_path, "--C=lots")

    assert unknown.returncode != 0 and "Traceback" not in unknown.stderr
    assert (
        unknown.stderr.strip() == "error: unknown trial argument --gamma; a Vertex AI trial may set ['C', 'max_iter']"
    )
    assert not_a_number.stderr.strip() == "error: trial argument --C must be a number, got 'lots'"
    assert not (tmp_path / "hypertune").exists()
