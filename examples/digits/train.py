"""Train a digits classifier with the hyperparameters in params.json and write it to $AIP_MODEL_DIR."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import joblib
from dataset import split
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent
KNOWN_PARAMS = {"C", "max_iter", "fault"}
FAULT_FILE = "relaunch_fault.json"  # read by the local endpoint: makes this model fail or slow down when served


def load_params(path: Path = HERE / "params.json") -> dict[str, Any]:
    """Read and check the hyperparameters (an unknown key is an error, not a silent default)."""
    params = json.loads(path.read_text())
    unknown = set(params) - KNOWN_PARAMS
    if unknown:
        sys.exit(f"error: unknown parameter(s) in {path.name}: {sorted(unknown)}; known: {sorted(KNOWN_PARAMS)}")
    return params


def build_model(params: dict[str, Any]) -> Pipeline:
    """Standardised pixels into a multinomial logistic regression."""
    classifier = LogisticRegression(C=float(params.get("C", 1.0)), max_iter=int(params.get("max_iter", 2000)))
    return make_pipeline(StandardScaler(), classifier)


def main() -> None:
    model_dir = os.environ.get("AIP_MODEL_DIR")
    if not model_dir:
        sys.exit("error: AIP_MODEL_DIR is not set; it names the directory the model is written to")
    params = load_params()
    print(f"params: {json.dumps(params, sort_keys=True)}", flush=True)
    x_train, _, y_train, _ = split()
    print(f"training on {len(y_train)} examples", flush=True)
    started = time.perf_counter()
    with threadpool_limits(limits=1):  # a problem this small runs ~10x faster without BLAS threads fighting
        model = build_model(params).fit(x_train, y_train)
    train_accuracy = float(model.score(x_train, y_train))
    print(f"trained in {time.perf_counter() - started:.2f}s, train accuracy {train_accuracy:.4f}", flush=True)
    out = Path(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out / "model.joblib")
    summary = {
        "params": params,
        "train_accuracy": train_accuracy,
        "n_train": len(y_train),
        "run_id": os.environ.get("RELAUNCH_RUN_ID"),
        "commit_sha": os.environ.get("RELAUNCH_COMMIT_SHA"),
    }
    (out / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if params.get("fault"):  # simulate a bad release, e.g. {"error_rate": 1.0} or {"latency_ms": 800}
        (out / FAULT_FILE).write_text(json.dumps(params["fault"]) + "\n")
        print(f"wrote {out / FAULT_FILE}: this model will misbehave when served", flush=True)
    print(f"wrote {out / 'model.joblib'}", flush=True)


if __name__ == "__main__":
    main()
