"""Score the candidate (and the champion, if any) on the same held-out digits; write metrics and outcomes.

gs:// folders (what relaunch hands the job on Vertex AI) are read and written through the Cloud Storage FUSE mount.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import joblib
from dataset import split
from sklearn.metrics import accuracy_score, f1_score, log_loss
from storage import local_dir
from threadpoolctl import threadpool_limits


def score(model_dir: Path, x_test: Any, y_test: Any) -> tuple[dict[str, float], list[int]]:
    """Metrics of the model in `model_dir` and its per-example outcomes (1 correct, 0 wrong)."""
    model = joblib.load(model_dir / "model.joblib")
    with threadpool_limits(limits=1):
        predicted, probabilities = model.predict(x_test), model.predict_proba(x_test)
    metrics = {
        "accuracy": float(accuracy_score(y_test, predicted)),
        "macro_f1": float(f1_score(y_test, predicted, average="macro")),
        "log_loss": float(log_loss(y_test, probabilities, labels=list(range(10)))),
    }
    return metrics, [int(p == y) for p, y in zip(predicted, y_test, strict=True)]


def required_dir(name: str) -> Path:
    """The directory named by env var `name`; exits with a clear message if it is unset or cannot be reached."""
    value = os.environ.get(name)
    if not value:
        sys.exit(f"error: {name} is not set")
    return local_dir(name, value)


def main() -> None:
    candidate_dir = required_dir("RELAUNCH_CANDIDATE_DIR")
    eval_dir = required_dir("RELAUNCH_EVAL_DIR")
    champion_dir = required_dir("RELAUNCH_CHAMPION_DIR") if os.environ.get("RELAUNCH_CHAMPION_DIR") else None
    _, x_test, _, y_test = split()
    candidate, candidate_outcomes = score(candidate_dir, x_test, y_test)
    print(f"candidate: {json.dumps(candidate)}", flush=True)
    champion, champion_outcomes = None, None
    if champion_dir:
        champion, champion_outcomes = score(champion_dir, x_test, y_test)
        print(f"champion: {json.dumps(champion)}", flush=True)
    else:
        print("no champion: scoring the candidate alone", flush=True)
    eval_dir.mkdir(parents=True, exist_ok=True)
    metrics = {"candidate": candidate, "champion": champion, "n_examples": len(y_test)}
    (eval_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    outcomes = {"candidate": candidate_outcomes, "champion": champion_outcomes}
    (eval_dir / "outcomes.json").write_text(json.dumps(outcomes) + "\n")
    where = os.environ["RELAUNCH_EVAL_DIR"]
    print(f"wrote metrics.json and outcomes.json to {where} ({len(y_test)} examples)", flush=True)


if __name__ == "__main__":
    main()
