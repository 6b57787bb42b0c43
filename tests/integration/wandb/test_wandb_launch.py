"""WandbLaunchBackend through the real wandb SDK against a local W&B API: the GraphQL it sends, the states it reads."""

from __future__ import annotations

import json
from typing import Any

import pytest

from relaunch.adapters.wandb.launch import WandbLaunchBackend, wandb_priority
from relaunch.domain.model import JobRequest, MachineSpec
from relaunch.domain.ports import TransientError
from tests.integration.wandb.conftest import API_KEY
from tests.wandb_server import FakeWandb

IMAGE = "europe-west1-docker.pkg.dev/proj-1/relaunch/digits@sha256:" + "0" * 64
STAGING = "gs://proj-1-relaunch/wandb-launch"


def make_backend(fake: FakeWandb, api: Any | None = None, key: str = API_KEY) -> WandbLaunchBackend:
    return WandbLaunchBackend(
        api_key=key,
        base_url=fake.url,
        entity="team",
        project="digits",
        queue="vertex-gpu",
        staging_bucket=STAGING,
        api=api,
    )


def make_request(key: str = "run-7:train", **fields: Any) -> JobRequest:
    values: dict[str, Any] = {
        "key": key,
        "run_id": "run-7",
        "step": "train",
        "image": IMAGE,
        "command": ["python", "train.py"],
        "env": {"RELAUNCH_RUN_ID": "run-7"},
        "output_dir": "gs://bucket/runs/run-7",
        "priority": 60,
        "machine": MachineSpec(
            machine_type="n1-standard-8", accelerator_type="NVIDIA_TESLA_T4", accelerator_count=1, replica_count=1
        ),
        "timeout_s": 7200,
    }
    values.update(fields)
    return JobRequest(**values)


def test_submit_enqueues_the_image_command_environment_and_machine(fake: FakeWandb) -> None:
    job_id = make_backend(fake).submit(make_request())

    (push,) = fake.called("pushToRunQueueByName")
    variables = push.variables
    assert (variables["entityName"], variables["projectName"], variables["queueName"]) == (
        "team",
        "model-registry",
        "vertex-gpu",
    )
    assert variables["priority"] == 1  # relaunch 60 -> W&B "high"
    spec = json.loads(variables["runSpec"])
    assert (spec["entity"], spec["project"], spec["name"]) == ("team", "digits", "run-7-train")
    assert spec["docker"] == {"docker_image": IMAGE}
    assert spec["overrides"]["entry_point"] == ["python", "train.py"]
    assert spec["overrides"]["run_config"] == {
        "relaunch_key": "run-7:train",
        "relaunch_run_id": "run-7",
        "relaunch_step": "train",
    }
    assert list(spec["resource_args"]) == ["vertex"]  # W&B's Vertex runner reads `vertex` first; gcp-vertex is old
    vertex = spec["resource_args"]["vertex"]
    assert vertex["spec"]["staging_bucket"] == STAGING  # the runner refuses a job without one
    # Vertex derives AIP_MODEL_DIR (<base>/model/) and its siblings from the base: the job sets none itself.
    assert vertex["spec"]["base_output_dir"] == "gs://bucket/runs/run-7"
    (pool,) = vertex["spec"]["worker_pool_specs"]
    assert pool["machine_spec"] == {
        "machine_type": "n1-standard-8",
        "accelerator_type": "NVIDIA_TESLA_T4",
        "accelerator_count": 1,
    }
    assert pool["replica_count"] == 1
    assert pool["container_spec"] == {
        "image_uri": "${image_uri}",
        "env": [{"name": "RELAUNCH_RUN_ID", "value": "run-7"}],
    }
    assert vertex["spec"]["labels"] == {"relaunch_run_id": "run-7"}
    assert vertex["run"] == {"timeout": 7200}
    item_id = next(iter(fake.items))
    assert job_id == f"team/digits/vertex-gpu/{item_id}"
    assert push.headers["authorization"].startswith("Basic ")  # the key went along, as W&B expects


def test_a_request_setting_an_output_variable_itself_is_refused(fake: FakeWandb) -> None:
    with pytest.raises(ValueError, match="AIP_MODEL_DIR"):
        make_backend(fake).submit(make_request(env={"AIP_MODEL_DIR": "gs://elsewhere/model/"}))
    assert fake.called("pushToRunQueueByName") == []


def test_a_cpu_job_asks_for_no_accelerator(fake: FakeWandb) -> None:
    make_backend(fake).submit(make_request(machine=MachineSpec(machine_type="e2-standard-4")))

    spec = json.loads(fake.called("pushToRunQueueByName")[0].variables["runSpec"])
    pool = spec["resource_args"]["vertex"]["spec"]["worker_pool_specs"][0]
    assert pool["machine_spec"] == {"machine_type": "e2-standard-4"}


def test_replicas_above_one_go_to_a_second_pool_behind_a_single_chief(fake: FakeWandb) -> None:
    machine = MachineSpec(machine_type="n1-standard-8", replica_count=4)
    make_backend(fake).submit(make_request(machine=machine))

    spec = json.loads(fake.called("pushToRunQueueByName")[0].variables["runSpec"])
    chief, workers = spec["resource_args"]["vertex"]["spec"]["worker_pool_specs"]
    assert (chief["replica_count"], workers["replica_count"]) == (1, 3)  # Vertex: pool 0 is the chief, one replica
    assert workers["machine_spec"] == chief["machine_spec"] and workers["container_spec"] == chief["container_spec"]


def test_the_same_key_is_enqueued_once_even_from_a_fresh_backend(fake: FakeWandb) -> None:
    first = make_backend(fake).submit(make_request())
    again = make_backend(fake).submit(make_request())
    other = make_backend(fake).submit(make_request("run-7:evaluate", step="evaluate"))

    assert again == first and other != first
    assert len(fake.called("pushToRunQueueByName")) == 2
    assert fake.called("RelaunchQueueItems")[0].variables == {
        "projectName": "model-registry",
        "entityName": "team",
        "runQueue": "vertex-gpu",
    }


def test_the_key_is_found_among_many_items(fake: FakeWandb) -> None:
    backend = make_backend(fake)
    wanted = backend.submit(make_request("run-1:train"))
    for n in range(2, 5):
        backend.submit(make_request(f"run-{n}:train"))

    assert backend.submit(make_request("run-1:train")) == wanted
    assert backend.submit(make_request("run-4:train")).endswith(list(fake.items)[-1])
    assert len(fake.called("pushToRunQueueByName")) == 4


@pytest.mark.parametrize(
    ("relaunch", "wandb"), [(-3, 3), (0, 3), (24, 3), (25, 2), (49, 2), (50, 1), (74, 1), (75, 0), (101, 0)]
)
def test_priorities_map_onto_the_four_wandb_levels(relaunch: int, wandb: int) -> None:
    assert wandb_priority(relaunch) == wandb


def test_a_waiting_item_is_queued_then_its_run_decides(fake: FakeWandb) -> None:
    backend = make_backend(fake)
    job_id = backend.submit(make_request())
    item_id = job_id.split("/", 3)[3]

    assert backend.status(job_id).state == "queued"
    assert fake.called("GetRunQueueItem")[-1].variables == {  # the SDK's own query (QueuedRun)
        "projectName": "model-registry",
        "entityName": "team",
        "runQueue": "vertex-gpu",
        "itemId": item_id,
    }
    fake.claim(item_id, "wb-run-1", "running")
    assert backend.status(job_id).state == "running"
    assert fake.called("Run")[-1].variables == {"entity": "team", "project": "digits", "name": "wb-run-1"}

    fake.runs["wb-run-1"].update(state="finished", createdAt="2026-01-01T00:00:00", heartbeatAt="2026-01-01T00:10:00")
    done = backend.status(job_id)
    assert done.state == "succeeded" and "team/digits/wb-run-1" in done.message
    assert done.finished_at is not None and done.started_at is not None
    assert done.finished_at - done.started_at == 600


@pytest.mark.parametrize(
    ("run_state", "job_state"),
    [("pending", "queued"), ("failed", "failed"), ("crashed", "failed"), ("killed", "cancelled")],
)
def test_wandb_run_states_map_onto_job_states(fake: FakeWandb, run_state: str, job_state: str) -> None:
    backend = make_backend(fake)
    job_id = backend.submit(make_request())
    fake.claim(job_id.split("/", 3)[3], "wb-run-1", run_state)

    assert backend.status(job_id).state == job_state


def test_a_claimed_item_whose_run_is_not_visible_yet_is_still_queued(fake: FakeWandb) -> None:
    backend = make_backend(fake)
    job_id = backend.submit(make_request())
    fake.items[job_id.split("/", 3)[3]].update(state="CLAIMED", associatedRunId="wb-run-9")

    status = backend.status(job_id)
    assert status.state == "queued" and "wb-run-9" in status.message


def test_an_item_the_agent_failed_is_a_failed_job_pointing_at_the_queue(fake: FakeWandb) -> None:
    backend = make_backend(fake)
    job_id = backend.submit(make_request())
    item_id = job_id.split("/", 3)[3]
    fake.items[item_id].update(state="FAILED")

    status = backend.status(job_id)
    assert status.state == "failed"
    assert item_id in status.message and "team/vertex-gpu" in status.message  # where W&B shows the reason


def test_cancel_removes_a_waiting_item_from_the_queue(fake: FakeWandb) -> None:
    backend = make_backend(fake)
    job_id = backend.submit(make_request())
    item_id = job_id.split("/", 3)[3]

    backend.cancel(job_id)

    assert item_id not in fake.items
    (delete,) = fake.called("DeleteFromRunQueue")
    assert delete.variables["runQueueItemId"] == item_id
    assert fake.called("fetchRunQueuesFromProject")[0].variables["runQueueName"] == "vertex-gpu"
    backend.cancel(job_id)  # already gone: nothing to do
    assert len(fake.called("DeleteFromRunQueue")) == 1
    with pytest.raises(KeyError):
        backend.status(job_id)


def test_cancel_stops_a_running_run(fake: FakeWandb) -> None:
    backend = make_backend(fake)
    job_id = backend.submit(make_request())
    fake.claim(job_id.split("/", 3)[3], "wb-run-1", "running")

    backend.cancel(job_id)

    assert fake.stopped == [fake.runs["wb-run-1"]["id"]]
    assert not fake.called("DeleteFromRunQueue")


def test_an_unknown_queue_is_a_permanent_error_naming_it(fake: FakeWandb) -> None:
    backend = WandbLaunchBackend(
        api_key=API_KEY, base_url=fake.url, entity="team", project="digits", queue="nope", staging_bucket=STAGING
    )
    with pytest.raises(ValueError, match="team/nope"):
        backend.submit(make_request())
    assert not fake.called("pushToRunQueueByName")


def test_a_wrong_api_key_is_refused_at_first_use(fake: FakeWandb) -> None:
    backend = make_backend(fake, key="x" * 40)
    with pytest.raises(ValueError, match="unauthorized"):
        backend.submit(make_request())
    assert not fake.items


def test_a_refusal_is_permanent_and_an_overloaded_api_is_transient(fake: FakeWandb) -> None:
    from wandb.sdk.launch.api import LaunchApi

    backend = make_backend(fake)
    backend.submit(make_request())
    fake.errors.append(403)
    with pytest.raises(ValueError, match="403"):
        backend.submit(make_request())

    # wandb-core retries 429/5xx itself until the API's timeout; a short one keeps this test short.
    patient = LaunchApi(api_key=API_KEY, overrides={"base_url": fake.url}, timeout=2)
    fake.errors.extend([503] * 1000)
    with pytest.raises(TransientError):
        make_backend(fake, api=patient).submit(make_request("run-8:train"))
    fake.errors.clear()


def test_bad_requests_and_settings_are_named(fake: FakeWandb) -> None:
    backend = make_backend(fake)
    with pytest.raises(ValueError, match="image"):
        backend.submit(make_request(image=""))
    with pytest.raises(ValueError, match="command"):
        backend.submit(make_request(command=[]))
    with pytest.raises(ValueError, match="entity/project/queue/item"):
        backend.status("not-a-job-id")
    with pytest.raises(ValueError, match="queue"):
        WandbLaunchBackend(
            api_key=API_KEY, base_url=fake.url, entity="team", project="digits", queue="", staging_bucket=STAGING
        )
    with pytest.raises(ValueError, match="base_url"):
        WandbLaunchBackend(
            api_key=API_KEY, base_url="api.wandb.ai", entity="t", project="p", queue="q", staging_bucket=STAGING
        )
    for bucket in ("", "proj-1-relaunch", "s3://bucket"):
        with pytest.raises(ValueError, match="staging_bucket"):
            WandbLaunchBackend(
                api_key=API_KEY, base_url=fake.url, entity="t", project="p", queue="q", staging_bucket=bucket
            )
    assert fake.calls == []  # all refused before any request
    assert API_KEY not in repr(backend)


def test_the_app_stages_launch_jobs_in_the_artifact_root_unless_told_otherwise(tmp_path: Any) -> None:
    from relaunch.bootstrap import App
    from relaunch.settings import Settings

    base = {"home": tmp_path, "training": "wandb", "wandb_api_key": API_KEY, "wandb_entity": "team"}
    base |= {
        "wandb_project": "digits",
        "wandb_launch_queue": "vertex-gpu",
        "artifact_root": "gs://proj-1-runs/relaunch",
    }
    assert App(Settings(**base)).backend.staging_bucket == "gs://proj-1-runs/relaunch"  # type: ignore[attr-defined]
    explicit = App(Settings(**base, wandb_launch_staging_bucket=STAGING)).backend
    assert explicit.staging_bucket == STAGING  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="staging_bucket"):
        _ = App(Settings(**{**base, "artifact_root": str(tmp_path)})).backend
