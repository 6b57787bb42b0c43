"""The local endpoint serves each version with the Python environment it was trained in (a predictor worker per
environment), not with relaunch's own scikit-learn.

The model is the digits example trained by its commit's environment (scikit-learn 1.6, as Vertex serves it); relaunch
runs a newer scikit-learn, which would unpickle it with an InconsistentVersionWarning, or not at all.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sklearn
from sklearn.datasets import load_digits

from relaunch.adapters.local.endpoint import HttpEndpoint
from relaunch.adapters.local.endpoint_server import EndpointServer
from relaunch.adapters.local.pyenv import RECORD, PythonEnvironments
from relaunch.domain.model import ModelVersion
from tests.conftest import SHARED_ENVS

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """(registry folder, environment hash, that environment's scikit-learn version): the example's environment, made
    (or reused) as the local build makes it, and a digits model trained by it into the registry's v1 folder."""
    checkout = tmp_path_factory.mktemp("checkout")
    shutil.copy(EXAMPLE / "requirements.txt", checkout / "requirements.txt")
    digest = PythonEnvironments(SHARED_ENVS).prepare(checkout).hash
    assert digest is not None
    python = SHARED_ENVS / digest / "bin" / "python"
    registry = tmp_path_factory.mktemp("registry")
    env = {"PATH": os.environ["PATH"], "AIP_MODEL_DIR": str(registry / "digits" / "v1"), "RELAUNCH_RUN_ID": "r1"}
    subprocess.run([str(python), str(EXAMPLE / "train.py")], env=env, cwd=EXAMPLE, check=True, capture_output=True)
    version = subprocess.run(
        [str(python), "-I", "-c", "import sklearn; print(sklearn.__version__)"], capture_output=True, text=True
    ).stdout.strip()
    assert version and version != sklearn.__version__  # the point of the test: two different scikit-learns
    return registry, digest, version


@pytest.fixture
def server(tmp_path: Path, trained: tuple[Path, str, str]) -> Iterator[EndpointServer]:
    running = EndpointServer(tmp_path / "endpoints.json", seed=7, registry_dir=trained[0], envs_dir=SHARED_ENVS)
    running.start()
    yield running
    running.stop()


def v1(registry: Path, environment: str | None) -> ModelVersion:
    meta = {"python_environment": environment} if environment else {}
    uri = str(registry / "digits" / "v1")
    return ModelVersion(pipeline="digits", version="v1", artifact_uri=uri, run_id="r1", metadata=meta)


def hello(server: EndpointServer, digest: str) -> dict[str, Any]:
    """What the running worker of `digest` said when it started."""
    said = server.state.predictors.hello(digest)
    assert said is not None
    return said


def digits(n: int) -> tuple[list[list[float]], list[int]]:
    features, labels = load_digits(return_X_y=True)
    return features[:n].tolist(), labels[:n].tolist()


def test_a_version_is_served_by_the_scikit_learn_it_was_trained_with(
    server: EndpointServer, trained: tuple[Path, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    registry, digest, trained_with = trained
    client = HttpEndpoint(server.url, token_path=server.token_path)
    rows, labels = digits(40)
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO):
        warnings.simplefilter("always")
        client.deploy("digits", v1(registry, digest))
        answer = client.predict("digits", rows)
    assert answer["model_version"] == "v1"
    assert sum(p == y for p, y in zip(answer["predictions"], labels, strict=True)) >= 36
    assert not [w for w in caught if type(w.message).__name__ == "InconsistentVersionWarning"]
    assert not [r for r in caplog.records if "pickled by scikit-learn" in r.getMessage()]
    assert hello(server, digest)["sklearn"] == trained_with
    assert client.describe("digits")["deployed"][0]["python_environment"] == digest


def test_a_crashed_worker_is_restarted_and_the_server_stops_its_workers(
    server: EndpointServer, trained: tuple[Path, str, str]
) -> None:
    registry, digest, _ = trained
    client = HttpEndpoint(server.url, token_path=server.token_path)
    rows, _labels = digits(5)
    client.deploy("digits", v1(registry, digest))
    first = client.predict("digits", rows)["predictions"]
    pid = hello(server, digest)["pid"]
    os.kill(pid, signal.SIGKILL)
    assert client.predict("digits", rows)["predictions"] == first
    restarted = hello(server, digest)["pid"]
    assert restarted != pid
    server.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(restarted, 0)


def test_a_version_without_an_environment_is_served_in_process(
    server: EndpointServer, trained: tuple[Path, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """An old version (no environment in its metadata) loads as before: with relaunch's scikit-learn, saying so."""
    client = HttpEndpoint(server.url, token_path=server.token_path)
    with warnings.catch_warnings(), caplog.at_level(logging.WARNING):
        warnings.simplefilter("ignore")
        client.deploy("digits", v1(trained[0], None))
        assert len(client.predict("digits", digits(3)[0])["predictions"]) == 3
    assert any("pickled by scikit-learn" in r.getMessage() for r in caplog.records)
    assert "python_environment" not in client.describe("digits")["deployed"][0]


def test_a_hostile_environment_or_path_is_refused_before_any_worker_sees_it(
    server: EndpointServer, trained: tuple[Path, str, str], tmp_path: Path
) -> None:
    registry, digest, _ = trained
    headers = {"Authorization": f"Bearer {server.token_path.read_text().strip()}"}
    url = f"{server.url}/v1/endpoints/digits:deploy"
    uri = str(registry / "digits" / "v1")
    for bad in ("../../etc", "0123456789abcdeg", 7, ["a"]):
        body = {"version": "v1", "artifact_uri": uri, "python_environment": bad}
        answer = requests.post(url, json=body, headers=headers, timeout=30)
        assert answer.status_code == 400
        assert answer.json()["error"]["message"] == "'python_environment' must be an environment hash (16 hex digits)"
    outside = tmp_path / "elsewhere"
    shutil.copytree(registry / "digits" / "v1", outside)
    body = {"version": "v1", "artifact_uri": str(outside), "python_environment": digest}
    answer = requests.post(url, json=body, headers=headers, timeout=30)
    assert answer.status_code == 403 and "not in the registry's folder" in answer.json()["error"]["message"]
    assert server.state.predictors.hello(digest) is None  # no worker was started for a refused deploy


def test_an_environment_without_joblib_falls_back_to_in_process_with_one_log_line(
    tmp_path: Path, trained: tuple[Path, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """An environment whose interpreter cannot import joblib (here: one that only says so) serves in-process."""
    envs = tmp_path / "envs"
    fake = envs / "00000000000000aa"
    (fake / "bin").mkdir(parents=True)
    (fake / RECORD).write_text("{}")
    python = fake / "bin" / "python"
    python.write_text('#!/bin/sh\necho \'{"hello": {"pid": 1, "python": "3", "joblib": null, "sklearn": null}}\'\n')
    python.chmod(0o755)
    running = EndpointServer(tmp_path / "e.json", registry_dir=trained[0], envs_dir=envs)
    running.start()
    try:
        client = HttpEndpoint(running.url, token_path=running.token_path)
        with warnings.catch_warnings(), caplog.at_level(logging.WARNING):
            warnings.simplefilter("ignore")
            client.deploy("digits", v1(trained[0], fake.name))
            for _ in range(2):
                assert len(client.predict("digits", digits(2)[0])["predictions"]) == 2
    finally:
        running.stop()
    said = [r.getMessage() for r in caplog.records if "cannot import joblib" in r.getMessage()]
    assert said == [f"python environment {fake.name} cannot import joblib: its models are served in-process"]


def test_a_deployed_environment_that_is_gone_is_served_in_process(
    tmp_path: Path, trained: tuple[Path, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    running = EndpointServer(tmp_path / "e.json", registry_dir=trained[0], envs_dir=tmp_path / "no-envs")
    running.start()
    try:
        client = HttpEndpoint(running.url, token_path=running.token_path)
        with warnings.catch_warnings(), caplog.at_level(logging.WARNING):
            warnings.simplefilter("ignore")
            client.deploy("digits", v1(trained[0], "00000000000000bb"))
            started = time.monotonic()
            assert len(client.predict("digits", digits(2)[0])["predictions"]) == 2
            assert time.monotonic() - started < 10
    finally:
        running.stop()
    assert any("00000000000000bb is not in" in r.getMessage() for r in caplog.records)


def test_a_model_error_in_the_worker_is_the_requests_error_and_a_broken_environment_says_why(
    server: EndpointServer, trained: tuple[Path, str, str], tmp_path: Path
) -> None:
    registry, digest, _ = trained
    client = HttpEndpoint(server.url, token_path=server.token_path)
    client.deploy("digits", v1(registry, digest))
    with pytest.raises(ValueError, match=r"-> 400: prediction failed: ValueError: X has 3 features"):
        client.predict("digits", [[1.0, 2.0, 3.0]])
    assert len(client.predict("digits", digits(2)[0])["predictions"]) == 2  # the same worker serves on
    broken = tmp_path / "envs" / "00000000000000cc"
    (broken / "bin").mkdir(parents=True)
    (broken / RECORD).write_text("{}")
    (broken / "bin" / "python").write_text("#!/bin/sh\nexit 3\n")
    (broken / "bin" / "python").chmod(0o755)
    running = EndpointServer(tmp_path / "e.json", registry_dir=registry, envs_dir=broken.parent)
    running.start()
    try:
        other = HttpEndpoint(running.url, token_path=running.token_path)
        said = r"-> 400: cannot load model.joblib from .*: the predictor worker of environment 0+cc did not say hello"
        with pytest.raises(ValueError, match=said + r": it exited \(code 3\)"):
            other.deploy("digits", v1(registry, broken.name))
    finally:
        running.stop()


def test_a_restarted_server_serves_its_versions_in_their_environments_and_refuses_an_edited_one(
    tmp_path: Path, trained: tuple[Path, str, str]
) -> None:
    registry, digest, trained_with = trained
    state = tmp_path / "endpoints.json"
    first = EndpointServer(state, registry_dir=registry, envs_dir=SHARED_ENVS)
    first.start()
    try:
        HttpEndpoint(first.url, token_path=first.token_path).deploy("digits", v1(registry, digest))
    finally:
        first.stop()
    again = EndpointServer(state, registry_dir=registry, envs_dir=SHARED_ENVS)
    again.start()
    try:
        assert len(HttpEndpoint(again.url).predict("digits", digits(2)[0])["predictions"]) == 2
        assert hello(again, digest)["sklearn"] == trained_with
    finally:
        again.stop()
    edited = json.loads(state.read_text())
    edited["endpoints"]["digits"]["deployed"][0]["python_environment"] = "../../../usr"
    state.write_text(json.dumps(edited))
    with pytest.raises(RuntimeError, match="names a python_environment that is not an environment hash"):
        EndpointServer(state, registry_dir=registry, envs_dir=SHARED_ENVS)
