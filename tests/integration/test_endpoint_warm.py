"""The local endpoint warms at start what its first deploy would wait for: a predictor worker (its interpreter importing
scikit-learn takes a second or two) of each deployed version's environment, with the model loaded, and one of the
environment used last, which the next push most likely trains in. Warming is no use: it leaves housekeeping's
"last used" mark of an environment alone.

The environments here are folders whose bin/python is this interpreter (a real one takes tens of seconds to build);
the worker runs as it does for a real one."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import joblib
from sklearn.dummy import DummyClassifier

from relaunch.adapters.local.endpoint_state import MODEL_FILE, ServingState
from relaunch.adapters.local.pyenv import RECORD

OLDER, NEWER = "0123456789abcdef", "fedcba9876543210"


def environment(root: Path, digest: str, last_used: float) -> Path:
    env = root / digest
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").symlink_to(sys.executable)
    (env / RECORD).write_text("{}\n")
    os.utime(env / RECORD, (last_used, last_used))
    return env


def test_warming_starts_a_worker_of_the_environment_used_last_and_marks_nothing_used(tmp_path: Path) -> None:
    envs = tmp_path / "envs"
    environment(envs, OLDER, 1_000.0)
    environment(envs, NEWER, 2_000.0)
    (envs / "ffffffffffffffff").mkdir()  # an environment being built (no record yet) is never the one used last
    state = ServingState(tmp_path / "endpoints.json", registry_dir=tmp_path / "registry", envs_dir=envs)
    try:
        assert state.warm() == [NEWER]
        hello = state.predictors.hello(NEWER)
        assert hello is not None and hello["joblib"], hello
        assert state.predictors.hello(OLDER) is None
        assert os.stat(envs / NEWER / RECORD).st_mtime == 2_000.0
    finally:
        state.close()


def test_warming_loads_each_deployed_version_in_its_environment(tmp_path: Path) -> None:
    envs, registry = tmp_path / "envs", tmp_path / "registry"
    environment(envs, OLDER, 1_000.0)
    environment(envs, NEWER, 2_000.0)
    model = registry / "digits" / "v1"
    model.mkdir(parents=True)
    joblib.dump(DummyClassifier().fit([[0.0], [1.0]], [0, 1]), model / MODEL_FILE)
    deployed = {"version": "v1", "artifact_uri": model.as_uri(), "deployed_at": 1.0, "python_environment": OLDER}
    state_file = tmp_path / "endpoints.json"
    state_file.write_text(json.dumps({"endpoints": {"digits": {"deployed": [deployed], "split": {"v1": 100}}}}))
    state = ServingState(state_file, registry_dir=registry, envs_dir=envs)
    try:
        assert state.warm() == [OLDER, NEWER]
        assert state.predictors.hello(OLDER) is not None and state.predictors.hello(NEWER) is not None
        assert state.predict("digits", [[0.5]])["model_version"] == "v1"
    finally:
        state.close()


def test_nothing_to_warm_without_environments(tmp_path: Path) -> None:
    assert ServingState(tmp_path / "a.json", registry_dir=tmp_path, envs_dir=None).warm() == []
    assert ServingState(tmp_path / "b.json", registry_dir=tmp_path, envs_dir=tmp_path / "none").warm() == []


def test_a_closed_endpoint_starts_no_worker(tmp_path: Path) -> None:
    """The server stops while its warm-up thread is still to start a worker: none is left behind."""
    environment(tmp_path / "envs", NEWER, 2_000.0)
    state = ServingState(tmp_path / "endpoints.json", registry_dir=tmp_path, envs_dir=tmp_path / "envs")
    state.close()
    assert state.warm() == []
    assert state.predictors.hello(NEWER) is None
