"""examples/digits as the pipeline runs it: train.py and evaluate.py as subprocesses with the Vertex env contract."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits"


def start(source: Path, script: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """Run an example script in its source directory, as the local agent does (without touching __pycache__)."""
    full_env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **env}
    pipe = subprocess.PIPE
    return subprocess.Popen([sys.executable, script], cwd=source, env=full_env, stdout=pipe, stderr=pipe, text=True)


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def train_env(model_dir: Path, run_id: str) -> dict[str, str]:
    return {"AIP_MODEL_DIR": str(model_dir), "RELAUNCH_RUN_ID": run_id, "RELAUNCH_COMMIT_SHA": "abc123"}


def eval_env(candidate: Path, champion: Path | None, out: Path) -> dict[str, str]:
    champion_dir = str(champion) if champion else ""
    return {
        "RELAUNCH_CANDIDATE_DIR": str(candidate),
        "RELAUNCH_CHAMPION_DIR": champion_dir,
        "RELAUNCH_EVAL_DIR": str(out),
    }


def read(directory: Path, name: str) -> Any:
    return json.loads((directory / name).read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Train default and over-regularised params, then evaluate bad-vs-good and good alone; two parallel waves."""
    root = tmp_path_factory.mktemp("digits")
    bad_source = root / "bad-src"
    shutil.copytree(EXAMPLE, bad_source, ignore=shutil.ignore_patterns("__pycache__"))
    (bad_source / "params.json").write_text(json.dumps({"C": 0.0001, "max_iter": 2000}))
    no_model_dir = {k: v for k, v in os.environ.items() if k != "AIP_MODEL_DIR"}
    wave = {
        "good": start(EXAMPLE, "train.py", train_env(root / "good", "run-good")),
        "bad": start(bad_source, "train.py", train_env(root / "bad", "run-bad")),
        "unset": subprocess.Popen(
            [sys.executable, "-B", "train.py"], cwd=EXAMPLE, env=no_model_dir, stderr=subprocess.PIPE, text=True
        ),
    }
    results = {name: finish(proc) for name, proc in wave.items()}
    assert results["good"][0] == 0 and results["bad"][0] == 0, results
    wave = {
        "paired": start(EXAMPLE, "evaluate.py", eval_env(root / "bad", root / "good", root / "paired")),
        "solo": start(EXAMPLE, "evaluate.py", eval_env(root / "good", None, root / "solo")),
    }
    results |= {name: finish(proc) for name, proc in wave.items()}
    assert results["paired"][0] == 0 and results["solo"][0] == 0, results
    return {"root": root, "results": results}


def test_training_writes_model_and_summary(runs: dict[str, Any]) -> None:
    model_dir = runs["root"] / "good"
    summary = read(model_dir, "training_summary.json")
    assert (model_dir / "model.joblib").is_file()
    assert summary["params"] == {"C": 1.0, "max_iter": 2000}
    assert (summary["run_id"], summary["commit_sha"]) == ("run-good", "abc123")
    assert summary["train_accuracy"] > 0.95
    assert "train accuracy" in runs["results"]["good"][1]


def test_default_params_beat_bad_params_on_the_same_held_out_data(runs: dict[str, Any]) -> None:
    metrics, outcomes = read(runs["root"] / "paired", "metrics.json"), read(runs["root"] / "paired", "outcomes.json")
    assert metrics["champion"]["accuracy"] >= 0.95
    assert metrics["candidate"]["accuracy"] < 0.9
    assert set(metrics["candidate"]) == {"accuracy", "macro_f1", "log_loss"}
    n = metrics["n_examples"]
    assert len(outcomes["candidate"]) == len(outcomes["champion"]) == n > 0
    assert set(outcomes["candidate"]) | set(outcomes["champion"]) <= {0, 1}
    assert sum(outcomes["champion"]) / n == pytest.approx(metrics["champion"]["accuracy"])


def test_evaluate_without_a_champion(runs: dict[str, Any]) -> None:
    metrics, outcomes = read(runs["root"] / "solo", "metrics.json"), read(runs["root"] / "solo", "outcomes.json")
    assert metrics["champion"] is None and outcomes["champion"] is None
    assert len(outcomes["candidate"]) == metrics["n_examples"]
    assert metrics["candidate"]["accuracy"] >= 0.95


def test_missing_model_dir_fails_clearly(runs: dict[str, Any]) -> None:
    code, _, err = runs["results"]["unset"]
    assert code != 0 and "AIP_MODEL_DIR" in err


# -- on Vertex AI: gs:// URIs are written through the Cloud Storage FUSE mount ---------------------------------


@pytest.fixture(scope="module")
def on_vertex(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Train and evaluate with gs:// folders, as on Vertex AI; a temporary folder stands in for the /gcs mount."""
    root = tmp_path_factory.mktemp("vertex")
    source, mount = root / "src", root / "gcs"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("__pycache__"))  # a stray gs:/ folder lands here
    (mount / "bucket").mkdir(parents=True)  # Vertex mounts every bucket the job may reach at /gcs/<bucket>/
    base = "gs://bucket/runs/digits-1"
    mounted = {"RELAUNCH_GCS_MOUNT_ROOT": str(mount)}
    trained = finish(start(source, "train.py", {**mounted, "AIP_MODEL_DIR": f"{base}/model/", "RELAUNCH_RUN_ID": "r"}))
    folders = {"RELAUNCH_CANDIDATE_DIR": f"{base}/model", "RELAUNCH_EVAL_DIR": f"{base}/eval"}
    scored = start(source, "evaluate.py", {**mounted, **folders})
    unmounted = {"RELAUNCH_GCS_MOUNT_ROOT": str(root / "nothing"), "AIP_MODEL_DIR": f"{base}/model/"}
    results = {"train": trained, "evaluate": finish(scored), "unmounted": finish(start(source, "train.py", unmounted))}
    return {"mount": mount, "source": source, "results": results}


def test_a_gs_model_dir_is_written_through_the_cloud_storage_fuse_mount(on_vertex: dict[str, Any]) -> None:
    code, out, err = on_vertex["results"]["train"]
    assert code == 0, err
    model_dir = on_vertex["mount"] / "bucket" / "runs" / "digits-1" / "model"
    assert (model_dir / "model.joblib").is_file() and read(model_dir, "training_summary.json")["run_id"] == "r"
    assert not (on_vertex["source"] / "gs:").exists()
    assert "gs://bucket/runs/digits-1/model/model.joblib" in out


def test_the_evaluation_reads_and_writes_gs_folders_through_the_mount(on_vertex: dict[str, Any]) -> None:
    code, _, err = on_vertex["results"]["evaluate"]
    assert code == 0, err
    metrics = read(on_vertex["mount"] / "bucket" / "runs" / "digits-1" / "eval", "metrics.json")
    assert metrics["candidate"]["accuracy"] >= 0.95 and metrics["champion"] is None


def test_a_gs_model_dir_without_its_bucket_mounted_fails_naming_both(on_vertex: dict[str, Any]) -> None:
    code, _, err = on_vertex["results"]["unmounted"]
    assert code != 0 and "AIP_MODEL_DIR" in err and "gs://bucket" in err and "not mounted" in err, err


def test_a_sweep_trial_reads_its_parameters_and_reports_validation_rows_the_evaluation_never_sees(
    tmp_path: Path,
) -> None:
    sys.path.insert(0, str(EXAMPLE))
    try:
        from dataset import split
    finally:
        sys.path.remove(str(EXAMPLE))
    report = tmp_path / "trial" / "trial_metrics.jsonl"
    env = {**train_env(tmp_path / "model", "r1"), "RELAUNCH_TRIAL_PARAMS": '{"C": 0.5, "max_iter": 300}'}
    code, out, err = finish(start(EXAMPLE, "train.py", {**env, "RELAUNCH_TRIAL_METRICS": str(report)}))
    assert code == 0, err
    summary = read(tmp_path / "model", "training_summary.json")
    assert summary["params"]["C"] == 0.5 and summary["params"]["max_iter"] == 300
    x_train, _, _, _ = split()  # the held-out split evaluate.py scores on stays out: validation is training's
    validation = math.ceil(len(x_train) * 0.2)
    assert summary["n_train"] == len(x_train) - validation and f"on {validation} rows" in out
    [line] = report.read_text().splitlines()
    reported = json.loads(line)
    assert reported["step"] == 1 and 0.9 < reported["val_accuracy"] <= 1.0


def test_a_bad_trial_parameter_fails_in_one_line(tmp_path: Path) -> None:
    env = {**train_env(tmp_path / "model", "r1"), "RELAUNCH_TRIAL_METRICS": str(tmp_path / "r.jsonl")}
    for bad in ('{"fault": {"error_rate": 1}}', "[1]", "not json"):
        code, _, err = finish(start(EXAMPLE, "train.py", {**env, "RELAUNCH_TRIAL_PARAMS": bad}))
        assert code == 1 and err.strip().startswith("error: RELAUNCH_TRIAL_PARAMS"), err
        assert "Traceback" not in err
