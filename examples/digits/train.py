"""Train a digits classifier with the hyperparameters in params.json and write it to $AIP_MODEL_DIR.

A gs:// AIP_MODEL_DIR (what Vertex AI sets) is written through Vertex's Cloud Storage FUSE mount (see storage.py).

In a sweep's trial (RELAUNCH_TRIAL_PARAMS set, a JSON object of C and max_iter over params.json), a fifth of the
training rows is held back as the validation split: the model is fitted on the rest and its validation accuracy is
appended to $RELAUNCH_TRIAL_METRICS as {"step": 1, "val_accuracy": x}. evaluate.py's held-out split is never touched.
In a Vertex AI tuning trial the parameters come as command-line arguments (`--C=0.5 --max_iter=300`) and the
objective is reported as the cloudml-hypertune library does, without needing it: one JSON line in
$CLOUD_ML_HP_METRIC_FILE (default /tmp/hypertune/output.metrics), which Vertex reads as the trial's measurement.
In a W&B sweep's trial on Launch the parameters come as arguments too; the objective goes to the W&B run's summary
and the model to $RELAUNCH_TRIAL_OUTPUT/$WANDB_RUN_ID (the sweep's trials share one AIP_MODEL_DIR).

When the pipeline asks for W&B tracking (RELAUNCH_WANDB_ARTIFACT set; offline in relaunch's embedded stack), the run
logs its metrics and the model folder as an artifact whose metadata names the commit, the relaunch run and the data
version (see tracking.py); the data version is in training_summary.json either way.

RELAUNCH_SMOKE=1 makes it a smoke run (what relaunch's reusable GitHub workflow does before any paid training):
the first RELAUNCH_SMOKE_ROWS training rows (default 100), at most RELAUNCH_SMOKE_STEPS solver iterations
(default 20); the model is written as usual. Any error still exits non-zero.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import joblib
import tracking
from dataset import SEED, data_version, split
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from storage import local_dir
from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent
KNOWN_PARAMS = {"C", "max_iter", "fault"}
FAULT_FILE = "relaunch_fault.json"  # read by the local endpoint: makes this model fail or slow down when served
SMOKE_DEFAULTS = {"RELAUNCH_SMOKE_ROWS": 100, "RELAUNCH_SMOKE_STEPS": 20}
TRIAL_PARAMS = {"C", "max_iter"}  # what a sweep may choose
VALIDATION_SIZE = 0.2  # of the training rows: a trial is scored on them, never on evaluate.py's held-out split
HYPERTUNE_FILE = "/tmp/hypertune/output.metrics"  # cloudml-hypertune's default; Vertex may name another


def load_params(path: Path = HERE / "params.json") -> dict[str, Any]:
    """Read and check the hyperparameters (an unknown key is an error, not a silent default)."""
    params = json.loads(path.read_text())
    unknown = set(params) - KNOWN_PARAMS
    if unknown:
        sys.exit(f"error: unknown parameter(s) in {path.name}: {sorted(unknown)}; known: {sorted(KNOWN_PARAMS)}")
    return params


def trial_params(env: dict[str, str], argv: list[str]) -> dict[str, Any] | None:
    """A sweep trial's parameters (Vertex's --NAME=VALUE arguments, or RELAUNCH_TRIAL_PARAMS, a JSON object), or
    None outside a sweep."""
    if argv:
        return vertex_trial_params(argv)
    raw = env.get("RELAUNCH_TRIAL_PARAMS")
    if raw is None:
        return None
    try:
        params = json.loads(raw)
    except ValueError:
        sys.exit("error: RELAUNCH_TRIAL_PARAMS is not JSON")
    if not isinstance(params, dict) or set(params) - TRIAL_PARAMS:
        sys.exit(f"error: RELAUNCH_TRIAL_PARAMS must be an object of {sorted(TRIAL_PARAMS)}")
    if not env.get("RELAUNCH_TRIAL_METRICS"):
        sys.exit("error: RELAUNCH_TRIAL_METRICS is not set; it names the file the trial reports to")
    return params


def vertex_trial_params(argv: list[str]) -> dict[str, Any]:
    """The parameters Vertex AI passes a tuning trial, as `--NAME=VALUE` arguments (numbers here)."""
    params: dict[str, Any] = {}
    for arg in argv:
        name, _, value = arg.removeprefix("--").partition("=")
        if not arg.startswith("--") or name not in TRIAL_PARAMS:
            sys.exit(
                f"error: unknown trial argument {arg.partition('=')[0][:60]}; a Vertex AI trial may set "
                f"{sorted(TRIAL_PARAMS)}"
            )
        try:
            number = float(value)
        except ValueError:
            sys.exit(f"error: trial argument --{name} must be a number, got {value[:60]!r}")
        if not math.isfinite(number):
            sys.exit(f"error: trial argument --{name} must be a finite number, got {value[:60]!r}")
        params[name] = int(number) if number.is_integer() and name == "max_iter" else number
    return params


def report_trial(env: dict[str, str], model: Pipeline, x_val: Any, y_val: Any, run: Any | None) -> float:
    """Score the trial on its validation rows and report the objective: appended to the local sweep's report file,
    in the W&B run's summary under W&B Launch, or on Vertex AI written as cloudml-hypertune writes it (its whole
    queue, here one line, rewritten each time)."""
    accuracy = float(model.score(x_val, y_val))
    if run is not None:
        run.summary["val_accuracy"] = accuracy
        print(f"validation accuracy {accuracy:.4f} on {len(y_val)} rows (reported to the W&B sweep)", flush=True)
        return accuracy
    local = env.get("RELAUNCH_TRIAL_METRICS")
    report = Path(local or env.get("CLOUD_ML_HP_METRIC_FILE") or HYPERTUNE_FILE)
    report.parent.mkdir(parents=True, exist_ok=True)
    if local:
        with report.open("a") as f:
            f.write(json.dumps({"step": 1, "val_accuracy": accuracy}) + "\n")
    else:
        line = {
            "timestamp": time.time(),
            "trial": env.get("CLOUD_ML_TRIAL_ID", "0"),
            "val_accuracy": str(accuracy),
            "global_step": "1",
            "checkpoint_path": "",
        }
        report.write_text(json.dumps(line, sort_keys=True) + "\n")
    print(f"validation accuracy {accuracy:.4f} on {len(y_val)} rows (reported to the sweep)", flush=True)
    return accuracy


def build_model(params: dict[str, Any]) -> Pipeline:
    """Standardised pixels into a multinomial logistic regression."""
    classifier = LogisticRegression(C=float(params.get("C", 1.0)), max_iter=int(params.get("max_iter", 2000)))
    return make_pipeline(StandardScaler(), classifier)


def smoke_settings(env: dict[str, str]) -> dict[str, int] | None:
    """The smoke run's rows and steps when RELAUNCH_SMOKE asks for one, else None; a bad value stops the run."""
    flag = env.get("RELAUNCH_SMOKE", "").strip().lower()
    if flag in ("", "0", "false"):
        return None
    if flag not in ("1", "true"):
        sys.exit(f"error: RELAUNCH_SMOKE must be 1 or 0, got {flag!r}")
    settings = {}
    for name, default in SMOKE_DEFAULTS.items():
        raw = env.get(name, "").strip() or str(default)
        if not raw.isdigit() or int(raw) < 1:
            sys.exit(f"error: {name} must be a positive integer, got {raw!r}")
        settings[name.removeprefix("RELAUNCH_SMOKE_").lower()] = int(raw)
    return settings


def smoke_slice(smoke: dict[str, int], params: dict[str, Any], x: Any, y: Any) -> tuple[dict[str, Any], Any, Any]:
    """The first rows (the split is shuffled, so they mix the classes) and a capped iteration count."""
    capped = {**params, "max_iter": min(int(params.get("max_iter", 2000)), smoke["steps"])}
    warnings.filterwarnings("ignore", category=ConvergenceWarning)  # expected after so few iterations
    print(f"smoke run: {min(len(y), smoke['rows'])} rows, at most {capped['max_iter']} iterations", flush=True)
    return capped, x[: smoke["rows"]], y[: smoke["rows"]]


def launch_run(env: dict[str, str]) -> Any | None:
    """The W&B run of a job W&B Launch started, else None (wandb is needed only there).

    Launch's agent sets WANDB_LAUNCH (with the run's id, project and entity) and fails a job that exits without
    calling wandb.init, however well it trained.
    """
    if env.get("WANDB_LAUNCH", "").lower() != "true":
        return None
    try:
        import wandb
    except ImportError:
        sys.exit("error: W&B Launch started this job (WANDB_LAUNCH) but wandb is not installed in its image")
    return wandb.init()


def main() -> None:
    model_dir = os.environ.get("AIP_MODEL_DIR")
    if not model_dir:
        sys.exit("error: AIP_MODEL_DIR is not set; it names the directory the model is written to")
    trials, wandb_run = os.environ.get("RELAUNCH_TRIAL_OUTPUT"), os.environ.get("WANDB_RUN_ID", "")
    if trials and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", wandb_run):  # a folder name: ASCII only, as W&B's ids
        sys.exit("error: RELAUNCH_TRIAL_OUTPUT is set but WANDB_RUN_ID is not a W&B run id")
    if trials:  # a W&B sweep's trial: its trials share the resource arguments, so each writes under its run id
        model_dir = f"{trials.rstrip('/')}/{wandb_run}/model"
    out = local_dir("RELAUNCH_TRIAL_OUTPUT" if trials else "AIP_MODEL_DIR", model_dir)  # fails in a second, not a run
    params = load_params()
    trial = trial_params(dict(os.environ), sys.argv[1:])
    params = {**params, **trial} if trial is not None else params
    smoke = smoke_settings(dict(os.environ))
    run = launch_run(dict(os.environ))
    tracked = tracking.start("train", params) if run is None and trial is None else None
    print(f"params: {json.dumps(params, sort_keys=True)}", flush=True)
    x_train, _, y_train, _ = split()
    if trial is not None:  # the held-out split stays for the gate's evaluation; validation comes out of training
        x_train, x_val, y_train, y_val = train_test_split(
            x_train, y_train, test_size=VALIDATION_SIZE, random_state=SEED, stratify=y_train
        )
    if smoke:
        params, x_train, y_train = smoke_slice(smoke, params, x_train, y_train)
    print(f"training on {len(y_train)} examples", flush=True)
    started = time.perf_counter()
    with threadpool_limits(limits=1):  # a problem this small runs ~10x faster without BLAS threads fighting
        model = build_model(params).fit(x_train, y_train)
    train_accuracy = float(model.score(x_train, y_train))
    print(f"trained in {time.perf_counter() - started:.2f}s, train accuracy {train_accuracy:.4f}", flush=True)
    if trial is not None:
        report_trial(dict(os.environ), model, x_val, y_val, run)
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out / "model.joblib")
    summary = {
        "params": params,
        "train_accuracy": train_accuracy,
        "n_train": len(y_train),
        "run_id": os.environ.get("RELAUNCH_RUN_ID"),
        "commit_sha": os.environ.get("RELAUNCH_COMMIT_SHA"),
        "data_version": data_version(),
    }
    if tracked is not None:  # the evaluation names the run that logged the model it scores
        summary["wandb_run"] = tracked.id
    if smoke:
        summary["smoke"] = smoke
    (out / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if params.get("fault"):  # simulate a bad release, e.g. {"error_rate": 1.0} or {"latency_ms": 800}
        (out / FAULT_FILE).write_text(json.dumps(params["fault"]) + "\n")
        print(f"wrote {out / FAULT_FILE}: this model will misbehave when served", flush=True)
    print(f"wrote {model_dir.rstrip('/')}/model.joblib", flush=True)
    if tracked is not None:
        tracked.log({"train_accuracy": train_accuracy, "n_train": len(y_train)})
        provenance = {k: summary[k] for k in ("commit_sha", "data_version")}
        tracking.log_model(tracked, out, {**provenance, "relaunch_run_id": summary["run_id"], "params": params})
        tracked.finish()
        print(f"logged W&B run {tracked.id} and its model to {os.environ.get('WANDB_DIR')}/wandb", flush=True)
    if run is not None:
        run.summary.update({"train_accuracy": train_accuracy, "n_train": len(y_train)})
        run.finish()


if __name__ == "__main__":
    main()
