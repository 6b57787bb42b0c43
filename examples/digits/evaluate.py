"""Score the candidate (and the champion, if any) on the same held-out digits; write metrics and outcomes.

When the pipeline asks for W&B tracking, the evaluation is a W&B run of its own (job_type "evaluate", grouped with the
training's) that logs both models' metrics and names, in its config, the model artifact it scored (tracking.py).

gs:// folders (what relaunch hands the job on Vertex AI) are read and written through the Cloud Storage FUSE mount.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import joblib
import tracking
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
    if tracking.collection() is not None:
        log_evaluation(candidate_dir, metrics)


def log_evaluation(candidate_dir: Path, metrics: dict[str, Any]) -> None:
    """The evaluation as a W&B run of its own, naming the model it scored (see tracking.py)."""
    run = tracking.start("evaluate", {"evaluator_sha": os.environ.get("RELAUNCH_EVALUATOR_SHA")})
    used = tracking.model_reference(candidate_dir, training_run(candidate_dir))
    run.config.update({"model_artifact": used})
    scores = {
        f"{who}/{name}": value for who in ("candidate", "champion") for name, value in (metrics[who] or {}).items()
    }
    run.log({**scores, "n_examples": metrics["n_examples"]})
    run.finish()
    print(f"logged W&B run {run.id}: evaluated {used['name']} (digest {used['digest']})", flush=True)


def training_run(model_dir: Path) -> str | None:
    """The W&B run that logged the model, from its training_summary.json (written by the candidate's code: checked)."""
    try:
        found = json.loads((model_dir / "training_summary.json").read_text()).get("wandb_run")
    except (OSError, ValueError, AttributeError):
        return None
    return found if isinstance(found, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", found) else None


if __name__ == "__main__":
    main()
