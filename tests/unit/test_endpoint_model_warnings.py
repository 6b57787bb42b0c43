"""A model pickled by another scikit-learn and served in-process (its version names no usable training environment)
is served with one log line saying so, not three warnings on the stack's terminal."""

from __future__ import annotations

import logging
import warnings

import pytest
from sklearn.exceptions import InconsistentVersionWarning

from relaunch.adapters.local import predictor


def test_a_version_mismatch_is_one_log_line_and_nothing_on_stderr(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    def load(path: str) -> str:
        for name in ("StandardScaler", "LogisticRegression", "Pipeline"):
            warnings.warn(
                InconsistentVersionWarning(
                    estimator_name=name, current_sklearn_version="1.9.1", original_sklearn_version="1.6.1"
                ),
                stacklevel=1,
            )
        warnings.warn("something else", UserWarning, stacklevel=1)
        return "model"

    monkeypatch.setattr("joblib.load", load)  # predictor imports joblib with its first model
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # as the stack runs: a warning would reach stderr
        with caplog.at_level(logging.WARNING, logger=predictor.__name__):
            assert predictor._load("/r/v1/model.joblib", "file:///r/v1") == "model"
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "file:///r/v1: pickled by scikit-learn 1.6.1, served in-process by 1.9.1 (the version names no usable"
        " training environment)",
        "file:///r/v1: UserWarning: something else",
    ]
    assert capsys.readouterr().err == ""
