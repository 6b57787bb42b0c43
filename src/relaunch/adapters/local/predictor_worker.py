"""Predictor worker: loads models and predicts with the interpreter and packages of one training environment.

Run as `ENV/bin/python -I predictor_worker.py` by the local endpoint (adapters/local/predictor.py), so a model is
unpickled by the scikit-learn it was pickled by, as Vertex serves it with the version it was trained for. Standard
library only at the top: it runs in an environment relaunch is not installed in; joblib (and what the model needs)
comes from that environment.

Protocol, one JSON object per line: first the worker says hello (`{"hello": {"pid", "python", "joblib",
"sklearn"}}`, joblib null when it cannot be imported, and then it exits); then each request
`{"model": PATH, "instances": [[...], ...]}` (no instances: load only) gets `{"predictions": [...]}` or
`{"error": MESSAGE, "value_error": BOOL}`, with `"warnings"` the first time a model is loaded. The parent checks
every path before sending it (only the registry's folder); the answers go to a private copy of stdout, so what a
model prints cannot be taken for one.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from typing import Any

MESSAGE_CHARS = 2000


def main() -> int:
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # a model's print() goes to stderr, never into the protocol
    sys.stdout = sys.stderr
    try:
        import joblib
    except ImportError:
        _send(answers, {"hello": {"pid": os.getpid(), "python": sys.version.split()[0], "joblib": None}})
        return 0
    _send(answers, {"hello": {"pid": os.getpid(), "python": sys.version.split()[0], **_versions(joblib)}})
    models: dict[str, Any] = {}
    for line in sys.stdin:
        _send(answers, _answer(line, models, joblib))
    return 0


def _answer(line: str, models: dict[str, Any], joblib: Any) -> dict[str, Any]:
    """One request's answer; every failure is an answer, never the worker's end."""
    try:
        request = json.loads(line)
        path, instances = request["model"], request.get("instances")
        answer: dict[str, Any] = {}
        if path not in models:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                models[path] = joblib.load(path)
            answer["warnings"] = sorted({f"{w.category.__name__}: {w.message}"[:MESSAGE_CHARS] for w in caught})
        if instances is not None:
            predicted = models[path].predict(_rows(instances))
            answer["predictions"] = predicted.tolist() if hasattr(predicted, "tolist") else list(predicted)
        json.dumps(answer)  # what cannot be encoded fails here, as this request's error
        return answer
    except Exception as exc:  # noqa: BLE001 (the model's code may raise anything: it is this request's error)
        return {"error": f"{type(exc).__name__}: {exc}"[:MESSAGE_CHARS], "value_error": isinstance(exc, ValueError)}


def _rows(instances: Any) -> Any:
    """The rows as the float array the in-process endpoint passes (numpy comes with scikit-learn)."""
    try:
        import numpy
    except ImportError:
        return instances
    return numpy.asarray(instances, dtype=float)


def _versions(joblib: Any) -> dict[str, str | None]:
    """joblib's and scikit-learn's versions: imported now, so the first request does not wait for them."""
    try:
        import sklearn

        sklearn_version: str | None = str(sklearn.__version__)
    except ImportError:
        sklearn_version = None
    return {"joblib": str(joblib.__version__), "sklearn": sklearn_version}


def _send(out: Any, message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


if __name__ == "__main__":
    sys.exit(main())
