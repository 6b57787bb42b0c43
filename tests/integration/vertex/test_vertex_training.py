"""VertexTrainingBackend against the fake Vertex REST API: the real JobServiceClient (REST transport) on loopback."""

from __future__ import annotations

from typing import Any

import pytest

from relaunch.adapters.gcp.vertex_common import VertexNotFound, key_digest, label_value
from relaunch.adapters.gcp.vertex_training import VertexTrainingBackend
from relaunch.config_files import load_spec
from relaunch.domain.jobs import RunPaths, eval_request, train_request
from relaunch.domain.model import JobRequest, MachineSpec, PipelineRun, Trigger
from relaunch.domain.ports import TransientError
from tests.integration.vertex.conftest import PARENT_PATH, PROJECT, REGION, ROOT, bodies, query
from tests.vertex_server import FakeVertex

JOBS = f"{PARENT_PATH}/customJobs"
IMAGE = "us-docker.pkg.dev/p/relaunch/digits@sha256:" + "ab" * 32
ROOT_URI = "gs://relaunch-artifacts/root"
SHA = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"


def run_and_paths(run_id: str = "digits-1a2b3c4d5e") -> tuple[PipelineRun, RunPaths]:
    run = PipelineRun(id=run_id, pipeline="digits", trigger=Trigger(kind="push", delivery_key="d-1", sha=SHA))
    base = f"{ROOT_URI}/runs/{run_id}"
    paths = RunPaths(output=base, evaluation=f"{base}/evaluation")
    return run.model_copy(update={"image": IMAGE}), paths


def gpu_train_request() -> JobRequest:
    """The digits pipeline's real training request, on a spot GPU machine with three replicas."""
    spec = load_spec(ROOT / "pipelines" / "digits.yaml")
    machine = MachineSpec(
        machine_type="n1-standard-8",
        accelerator_type="NVIDIA_TESLA_T4",
        accelerator_count=2,
        replica_count=3,
        spot=True,
    )
    spec = spec.model_copy(update={"train": spec.train.model_copy(update={"machine": machine})})
    run, paths = run_and_paths()
    return train_request(run, spec, IMAGE, paths)


@pytest.fixture
def backend(client_kwargs: dict[str, Any]) -> VertexTrainingBackend:
    return VertexTrainingBackend(PROJECT, REGION, service_account="trainer@p.iam.gserviceaccount.com", **client_kwargs)


def test_submit_creates_the_custom_job_vertex_expects(vertex: FakeVertex, backend: VertexTrainingBackend) -> None:
    request = gpu_train_request()

    job_id = backend.submit(request)

    assert job_id == f"projects/{vertex.project_number}/locations/{REGION}/customJobs/1001"
    digest = key_digest("digits-1a2b3c4d5e:train")
    assert query(vertex, "GET", JOBS) == [{"filter": [f'labels.relaunch-key="{digest}"'], "pageSize": ["10"]}]
    machine = {"machineType": "n1-standard-8", "acceleratorType": 5, "acceleratorCount": 2}  # 5: NVIDIA_TESLA_T4
    container: dict[str, Any] = {
        "imageUri": IMAGE,
        "command": ["python", "train.py"],
        "env": [{"name": k, "value": v} for k, v in request.env.items()],
    }
    assert bodies(vertex, "POST", JOBS) == [
        {
            "displayName": "relaunch-digits-1a2b3c4d5e-train",
            "jobSpec": {
                "workerPoolSpecs": [
                    {"machineSpec": machine, "replicaCount": "1", "containerSpec": container},
                    {"machineSpec": machine, "replicaCount": "2", "containerSpec": container},
                ],
                "scheduling": {"timeout": "600s", "strategy": 4},  # 4: SPOT; digits.yaml retries once
                "serviceAccount": "trainer@p.iam.gserviceaccount.com",
                "baseOutputDirectory": {"outputUriPrefix": f"{ROOT_URI}/runs/digits-1a2b3c4d5e"},
            },
            "labels": {"relaunch-run-id": "digits-1a2b3c4d5e", "relaunch-step": "train", "relaunch-key": digest},
        }
    ]
    env = {e["name"]: e["value"] for e in container["env"]}
    # Vertex sets AIP_MODEL_DIR=<base>/model/ (and the checkpoint and log folders) from baseOutputDirectory itself.
    assert not [name for name in env if name.startswith("AIP_")], env
    assert env["RELAUNCH_COMMIT_SHA"] == SHA


def test_an_evaluation_job_writes_no_model_and_runs_on_demand(
    vertex: FakeVertex, backend: VertexTrainingBackend
) -> None:
    spec = load_spec(ROOT / "pipelines" / "digits.yaml")
    spec = spec.model_copy(update={"evaluate": spec.evaluate.model_copy(update={"max_retries": 0})})
    run, paths = run_and_paths()

    backend.submit(eval_request(run, spec, "gs://relaunch-artifacts/registry/v1", paths))

    (body,) = bodies(vertex, "POST", JOBS)
    assert body["displayName"] == "relaunch-digits-1a2b3c4d5e-evaluate"
    assert "baseOutputDirectory" not in body["jobSpec"]
    assert body["jobSpec"]["scheduling"] == {"timeout": "600s", "disableRetries": True}
    assert body["jobSpec"]["workerPoolSpecs"][0]["machineSpec"] == {"machineType": "n1-standard-4"}
    assert len(body["jobSpec"]["workerPoolSpecs"]) == 1


def test_submit_is_idempotent_on_the_key_across_instances(
    vertex: FakeVertex, backend: VertexTrainingBackend, client_kwargs: dict[str, Any]
) -> None:
    request = gpu_train_request()
    first = backend.submit(request)
    again = backend.submit(request)
    other_process = VertexTrainingBackend(PROJECT, REGION, **client_kwargs).submit(request)

    assert first == again == other_process
    assert len(bodies(vertex, "POST", JOBS)) == 1
    assert len(bodies(vertex, "GET", JOBS)) == 3


def test_another_key_creates_another_job(vertex: FakeVertex, backend: VertexTrainingBackend) -> None:
    request = gpu_train_request()
    first = backend.submit(request)
    second = backend.submit(request.model_copy(update={"key": "digits-1a2b3c4d5e:train#2"}))
    assert first != second
    assert len(bodies(vertex, "POST", JOBS)) == 2


@pytest.mark.parametrize(
    ("vertex_state", "state"),
    [
        ("JOB_STATE_QUEUED", "queued"),
        ("JOB_STATE_PENDING", "queued"),
        ("JOB_STATE_RUNNING", "running"),
        ("JOB_STATE_SUCCEEDED", "succeeded"),
        ("JOB_STATE_FAILED", "failed"),
        ("JOB_STATE_EXPIRED", "failed"),
        ("JOB_STATE_CANCELLING", "cancelled"),
        ("JOB_STATE_CANCELLED", "cancelled"),
    ],
)
def test_status_maps_the_job_state(
    vertex: FakeVertex, backend: VertexTrainingBackend, vertex_state: str, state: str
) -> None:
    job_id = backend.submit(gpu_train_request())
    vertex.set_job(job_id, state=vertex_state)

    status = backend.status(job_id)

    assert (status.id, status.state) == (job_id, state)
    assert vertex.calls("GET")[-1].path == f"/v1/{job_id}"


def test_status_carries_times_and_the_error_message(vertex: FakeVertex, backend: VertexTrainingBackend) -> None:
    job_id = backend.submit(gpu_train_request())
    error = {"code": 3, "message": "The replica workerpool0-0 exited with a non-zero status of 1."}
    times = {"startTime": "2024-05-01T10:00:00Z", "endTime": "2024-05-01T10:02:30.500Z"}
    vertex.set_job(job_id, state="JOB_STATE_FAILED", error=error, **times)

    status = backend.status(job_id)

    assert status.state == "failed" and status.done
    assert status.message == error["message"]
    assert (status.started_at, status.finished_at) == (1714557600.0, 1714557750.5)


def test_cancel_posts_to_the_job_and_is_quiet_on_a_finished_job(
    vertex: FakeVertex, backend: VertexTrainingBackend
) -> None:
    job_id = backend.submit(gpu_train_request())

    backend.cancel(job_id)

    assert bodies(vertex, "POST", f"/v1/{job_id}:cancel") == [{}]
    assert backend.status(job_id).state == "cancelled"
    vertex.set_job(job_id, state="JOB_STATE_SUCCEEDED")
    backend.cancel(job_id)  # Vertex refuses with FAILED_PRECONDITION; the job is done, so nothing to do
    assert len(bodies(vertex, "POST", f"/v1/{job_id}:cancel")) == 2


def test_unknown_job_is_a_not_found_value_error(backend: VertexTrainingBackend) -> None:
    with pytest.raises(VertexNotFound, match="customJobs/999"):
        backend.status(f"projects/{PROJECT}/locations/{REGION}/customJobs/999")


@pytest.mark.parametrize("code", [429, 500, 503])
def test_throttling_and_server_errors_are_transient(
    vertex: FakeVertex, backend: VertexTrainingBackend, code: int
) -> None:
    vertex.fail_next("POST", "/customJobs", code, "The service is currently unavailable.")
    with pytest.raises(TransientError, match=f"{code}"):
        backend.submit(gpu_train_request())
    assert vertex.jobs == {}
    assert backend.submit(gpu_train_request())  # the redelivered command succeeds


def test_a_refused_job_is_a_value_error_with_the_servers_message(
    vertex: FakeVertex, backend: VertexTrainingBackend
) -> None:
    message = "Machine type n1-standard-8 is not supported with accelerator NVIDIA_TESLA_T4 in us-central1."
    vertex.fail_next("POST", "/customJobs", 400, message)
    with pytest.raises(ValueError, match="not supported with accelerator") as caught:
        backend.submit(gpu_train_request())
    assert not isinstance(caught.value, TransientError)


def test_an_unreachable_api_is_transient(client_kwargs: dict[str, Any]) -> None:
    from relaunch.adapters.local.stack import free_port

    kwargs = {**client_kwargs, "api_endpoint": f"http://127.0.0.1:{free_port()}"}
    with pytest.raises(TransientError):
        VertexTrainingBackend(PROJECT, REGION, **kwargs).status(f"projects/{PROJECT}/locations/{REGION}/customJobs/1")


def test_bad_requests_are_refused_before_any_call(vertex: FakeVertex, backend: VertexTrainingBackend) -> None:
    request = gpu_train_request()
    local = request.model_copy(update={"output_dir": "/tmp/runs/r1"})
    with pytest.raises(ValueError, match="output_dir"):
        backend.submit(local)
    shadowed = request.model_copy(update={"env": {**request.env, "AIP_TENSORBOARD_LOG_DIR": "gs://b/tb"}})
    with pytest.raises(ValueError, match="env.AIP_TENSORBOARD_LOG_DIR"):
        backend.submit(shadowed)
    tpu = request.model_copy(update={"machine": MachineSpec(accelerator_type="NVIDIA_H9000", accelerator_count=1)})
    with pytest.raises(ValueError, match="machine.accelerator_type"):
        backend.submit(tpu)
    assert bodies(vertex, "POST", JOBS) == []
    with pytest.raises(ValueError, match="project"):
        VertexTrainingBackend(" ", REGION)


def test_labels_follow_vertex_rules() -> None:
    assert label_value("digits-1a2b3c4d5e") == "digits-1a2b3c4d5e"
    assert label_value("Run.ID/7").startswith("run-id-7-")  # lossy, so a digest keeps it distinct
    assert label_value("Run.ID/7") != label_value("run-id-7")
    long = "x" * 70 + "-1a2b3c4d5e"
    assert len(label_value(long)) == 63 and label_value(long) != label_value("x" * 70 + "-ffffffffff")


def test_building_the_adapters_loads_no_sdk() -> None:
    """The composition root builds adapters eagerly in places; the SDKs must still load only on first call."""
    import json
    import subprocess
    import sys

    code = (
        "import sys, json\n"
        "from relaunch.adapters.gcp.vertex_training import VertexTrainingBackend\n"
        "from relaunch.adapters.gcp.vertex_registry import VertexRegistry\n"
        "from relaunch.adapters.gcp.vertex_endpoint import VertexEndpoint\n"
        "from relaunch.adapters.gcp.gcs_blobs import GcsBlobStore\n"
        "VertexTrainingBackend('p', 'r'); VertexRegistry('p', 'r', serving_image='i'); VertexEndpoint('p', 'r')\n"
        "GcsBlobStore(project='p')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('google.cloud.', 'google.api_core')))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(done.stdout) == []


def test_a_retry_not_yet_due_is_refused_as_transient_and_created_once_due(
    vertex: FakeVertex, backend: VertexTrainingBackend
) -> None:
    """Vertex cannot hold a job: a retry with `not_before` ahead is refused until then, without any create."""
    import time

    retry = gpu_train_request().model_copy(update={"key": "digits-1a2b3c4d5e:train:2", "not_before": time.time() + 600})
    with pytest.raises(TransientError, match="not due before"):
        backend.submit(retry)
    assert bodies(vertex, "POST", JOBS) == []
    job_id = backend.submit(retry.model_copy(update={"not_before": time.time() - 1}))
    assert len(bodies(vertex, "POST", JOBS)) == 1 and job_id.endswith("/customJobs/1001")
