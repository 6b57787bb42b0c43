"""The Vertex AI stand-in itself: it refuses bodies the discovery document does not allow, runs CustomJobs as Vertex
runs their containers (when given a runner), and answers predictions from the deployed model.joblib."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relaunch.adapters.gcp.vertex_endpoint import VertexEndpoint
from relaunch.adapters.gcp.vertex_registry import VertexRegistry
from relaunch.adapters.gcp.vertex_training import VertexTrainingBackend
from relaunch.domain.model import JobRequest, JobStatus
from relaunch.emulated.vertex import FakeVertex, JobRunner, VertexServer
from tests.integration.vertex.conftest import PARENT_PATH, PROJECT, REGION

IMAGE = "us-docker.pkg.dev/p/relaunch/probe@sha256:" + "cd" * 32
BASE = "gs://relaunch-artifacts/root/runs/probe-1"
# Writes the environment it was given (and its working folder) to AIP_MODEL_DIR through the "FUSE mount".
PROBE = """
import json, os, pathlib, sys
bucket, _, rest = os.environ["AIP_MODEL_DIR"].removeprefix("gs://").partition("/")
out = pathlib.Path(os.environ["RELAUNCH_GCS_MOUNT_ROOT"], bucket, rest)
out.mkdir(parents=True, exist_ok=True)
(out / "env.json").write_text(json.dumps({"env": dict(os.environ), "cwd": os.getcwd(), "argv": sys.argv[1:]}))
print("some output", flush=True)
if sys.argv[1:] == ["fail"]:
    print("boom: the data is bad", file=sys.stderr)
    sys.exit(3)
"""


def post(fake: FakeVertex, path: str, body: Any) -> tuple[int, Any]:
    return fake.handle("POST", f"{PARENT_PATH}/{path}", body)


def test_bodies_the_discovery_document_does_not_allow_are_refused_naming_the_field(vertex: FakeVertex) -> None:
    job = {"displayName": "j", "jobSpec": {"workerPoolSpecs": [{"replicaCount": "1"}]}, "colour": "red"}
    code, answer = post(vertex, "customJobs", job)
    assert code == 400
    assert answer["error"]["status"] == "INVALID_ARGUMENT"
    assert "custom_job.colour: not a field of GoogleCloudAiplatformV1CustomJob" in answer["error"]["message"]
    (details,) = answer["error"]["details"]
    assert details["fieldViolations"][0]["field"] == "custom_job.colour"

    wrong_type = {"displayName": "j", "jobSpec": {"workerPoolSpecs": [{"replicaCount": "one"}]}}
    code, answer = post(vertex, "customJobs", wrong_type)
    assert code == 400
    assert "custom_job.jobSpec.workerPoolSpecs[0].replicaCount: must be a 64-bit integer" in answer["error"]["message"]

    code, answer = post(vertex, "models:upload", {"model": {"displayName": 7}})
    assert (code, answer["error"]["message"]) == (
        400,
        "Invalid JSON payload received. model.displayName: must be string, got int",
    )
    assert [r.problems for r in vertex.refused][2] == ["model.displayName: must be string, got int"]
    assert vertex.jobs == {} and vertex.models == {}  # nothing refused was kept


def test_enums_sent_as_numbers_are_read_by_name_and_unknown_names_refused(vertex: FakeVertex) -> None:
    machine: dict[str, Any] = {"machineType": "n1-standard-4", "acceleratorType": 5}  # 5: NVIDIA_TESLA_T4
    pool = {"machineSpec": machine, "replicaCount": "1"}
    code, job = post(vertex, "customJobs", {"displayName": "j", "jobSpec": {"workerPoolSpecs": [pool]}})
    assert code == 200
    assert job["jobSpec"]["workerPoolSpecs"][0]["machineSpec"]["acceleratorType"] == "NVIDIA_TESLA_T4"

    machine["acceleratorType"] = "NVIDIA_TESLA_Z9"
    code, answer = post(vertex, "customJobs", {"displayName": "j", "jobSpec": {"workerPoolSpecs": [pool]}})
    assert code == 400
    assert "acceleratorType: 'NVIDIA_TESLA_Z9' is not one of" in answer["error"]["message"]


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    """The Cloud Storage stand-in's root folder: gs://relaunch-artifacts/... is storage/relaunch-artifacts/..."""
    (tmp_path / "gcs" / "relaunch-artifacts").mkdir(parents=True)
    return tmp_path / "gcs"


@pytest.fixture
def image(tmp_path: Path) -> Path:
    folder = tmp_path / "images" / "probe"
    folder.mkdir(parents=True)
    (folder / "probe.py").write_text(PROBE)
    return folder


@pytest.fixture
def running(storage: Path, image: Path) -> Iterator[tuple[FakeVertex, list[dict[str, Any]]]]:
    """A stand-in whose jobs really run: IMAGE is the `image` folder; ended jobs are collected."""
    ended: list[dict[str, Any]] = []
    images = {IMAGE: image}
    fake = FakeVertex(runner=JobRunner(image_folder=images.__getitem__), storage_root=storage, on_job_end=ended.append)
    with VertexServer(fake):
        yield fake, ended


def backend(fake: FakeVertex) -> VertexTrainingBackend:
    from google.auth.credentials import AnonymousCredentials

    return VertexTrainingBackend(PROJECT, REGION, api_endpoint=fake.url, credentials=AnonymousCredentials())


def wait_done(training: VertexTrainingBackend, job_id: str) -> JobStatus:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = training.status(job_id)
        if status.state not in ("queued", "running"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {status.state}")


def probe_request(*args: str, env: dict[str, str] | None = None) -> JobRequest:
    command = ["python", "probe.py", *args]
    return JobRequest(
        key="probe-1:train",
        run_id="probe-1",
        step="train",
        image=IMAGE,
        command=command,
        env=env or {},
        output_dir=BASE,
    )


def test_a_job_runs_its_command_with_the_environment_vertex_gives_a_container(
    running: tuple[FakeVertex, list[dict[str, Any]]], storage: Path, image: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, ended = running
    monkeypatch.setenv("HOST_SECRET", "s3cr3t")
    training = backend(fake)

    job_id = training.submit(probe_request(env={"RELAUNCH_RUN_ID": "probe-1"}))
    status = wait_done(training, job_id)

    assert status.state == "succeeded"
    assert status.started_at is not None and status.finished_at is not None
    seen = json.loads((storage / "relaunch-artifacts/root/runs/probe-1/model/env.json").read_text())
    env = seen.pop("env")
    home = env.pop("HOME")
    env.pop("LC_CTYPE", None)  # set by the child's own Python under the C locale (PEP 538)
    assert env == {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "RELAUNCH_RUN_ID": "probe-1",
        "AIP_MODEL_DIR": f"{BASE}/model/",
        "AIP_CHECKPOINT_DIR": f"{BASE}/checkpoints/",
        "AIP_TENSORBOARD_LOG_DIR": f"{BASE}/logs/",
        "CLOUD_ML_PROJECT_ID": PROJECT,
        "RELAUNCH_GCS_MOUNT_ROOT": str(storage),
    }
    assert Path(seen["cwd"]).name == "app" and Path(seen["cwd"]) != image  # a fresh copy of the image
    assert Path(home).parent == Path(seen["cwd"]).parent
    assert not Path(seen["cwd"]).exists()  # removed once the job ended
    ((final),) = ended
    assert (final["name"], final["state"]) == (job_id, "JOB_STATE_SUCCEEDED")
    assert fake.refused == []


def test_a_failing_job_ends_failed_with_its_exit_code_and_stderr(
    running: tuple[FakeVertex, list[dict[str, Any]]],
) -> None:
    fake, ended = running
    training = backend(fake)

    job_id = training.submit(probe_request("fail"))
    status = wait_done(training, job_id)

    assert status.state == "failed"
    assert "exited with a non-zero status of 3" in status.message
    assert "boom: the data is bad" in status.message
    assert [job["state"] for job in ended] == ["JOB_STATE_FAILED"]
    assert ended[0]["error"]["code"] == 3


def test_a_job_whose_image_is_unknown_fails_and_a_running_job_can_be_cancelled(
    running: tuple[FakeVertex, list[dict[str, Any]]], image: Path
) -> None:
    fake, ended = running
    training = backend(fake)
    unknown = probe_request().model_copy(update={"image": IMAGE.replace("cd", "ef"), "key": "probe-2:train"})
    status = wait_done(training, training.submit(unknown))
    assert status.state == "failed"
    assert "could not start" in status.message

    (image / "probe.py").write_text("import time\ntime.sleep(60)\n")
    slow = probe_request().model_copy(update={"key": "probe-3:train"})
    job_id = training.submit(slow)
    deadline = time.monotonic() + 10
    while training.status(job_id).state != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    training.cancel(job_id)
    assert wait_done(training, job_id).state == "cancelled"  # CANCELLING already counts as cancelled
    while len(ended) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [job["state"] for job in ended] == ["JOB_STATE_FAILED", "JOB_STATE_CANCELLED"]


def test_predict_answers_with_the_deployed_models_joblib(storage: Path) -> None:
    import joblib
    from google.auth.credentials import AnonymousCredentials
    from sklearn.linear_model import LogisticRegression

    model_dir = storage / "relaunch-artifacts/root/runs/digits-aaaa/model"
    model_dir.mkdir(parents=True)
    joblib.dump(LogisticRegression().fit([[0.0], [1.0], [9.0], [10.0]], [0, 0, 1, 1]), model_dir / "model.joblib")

    with VertexServer(FakeVertex(storage_root=storage)) as fake:
        kwargs: dict[str, Any] = {"api_endpoint": fake.url, "credentials": AnonymousCredentials()}
        registry = VertexRegistry(PROJECT, REGION, serving_image="serving:1", poll_interval_s=0.01, **kwargs)
        artifacts = "gs://relaunch-artifacts/root/runs/digits-aaaa/model"
        version = registry.register("digits", "digits-aaaa", artifacts, {"accuracy": 0.9})
        endpoint = VertexEndpoint(PROJECT, REGION, machine_type="n1-standard-4", poll_interval_s=0.01, **kwargs)
        endpoint.deploy("digits", version)

        answer = endpoint.predict("digits", [[0.5], [9.5]])
        assert answer["predictions"] == [0, 1]
        with pytest.raises(ValueError, match="Prediction failed"):
            endpoint.predict("digits", [["not", "a", "number"]])
        assert fake.refused == []
