"""Vertex AI training backend: each job is a CustomJob, found again by a label carrying its idempotency key.

The job's output base (`<artifact_root>/runs/<run_id>`) is sent as the CustomJob's baseOutputDirectory, and Vertex
itself sets AIP_MODEL_DIR=<base>/model/ (and the checkpoint and log folders) in the containers: relaunch sends none
of those variables, so the folder the job writes is the one relaunch reads the model from.
"""

from __future__ import annotations

import time
from typing import Any

from relaunch.adapters.gcp.vertex_common import VertexService, call, key_digest, label_value, require
from relaunch.domain.jobs import check_env
from relaunch.domain.model import JobRequest, JobState, JobStatus
from relaunch.domain.ports import TransientError

STATES: dict[str, JobState] = {
    "JOB_STATE_UNSPECIFIED": "queued",
    "JOB_STATE_QUEUED": "queued",
    "JOB_STATE_PENDING": "queued",
    "JOB_STATE_RUNNING": "running",
    "JOB_STATE_UPDATING": "running",
    "JOB_STATE_PAUSED": "running",  # not finished: the run keeps waiting (and reconcile times it out)
    "JOB_STATE_SUCCEEDED": "succeeded",
    "JOB_STATE_PARTIALLY_SUCCEEDED": "failed",
    "JOB_STATE_FAILED": "failed",
    "JOB_STATE_EXPIRED": "failed",
    "JOB_STATE_CANCELLING": "cancelled",
    "JOB_STATE_CANCELLED": "cancelled",
}
KEY_LABEL = "relaunch-key"


class VertexTrainingBackend(VertexService):
    """A `TrainingBackend` on Vertex AI CustomJobs; job ids are the jobs' full resource names."""

    client_kind = "JobServiceClient"

    def __init__(
        self,
        project: str,
        region: str,
        *,
        service_account: str | None = None,
        api_endpoint: str | None = None,
        credentials: Any | None = None,
    ) -> None:
        require("VertexTrainingBackend", project=project, region=region)
        super().__init__(project, region, api_endpoint, credentials)
        self.service_account = service_account

    # -- TrainingBackend --------------------------------------------------------------------------------------

    def submit(self, request: JobRequest) -> str:
        """Create the CustomJob unless one labelled with this key exists; returns its resource name."""
        existing = self._find(request.key)
        if existing is not None:
            return existing
        if request.not_before is not None and time.time() < request.not_before:
            # Vertex cannot hold a job: refuse it until it is due; the redelivered event or the reconcile tick
            # submits it again, and the retry step computes the same time every time.
            due = time.strftime("%H:%M:%S", time.localtime(request.not_before))
            raise TransientError(f"job {request.key} is a retry not due before {due}")
        job = call(self.client, "create_custom_job", {"parent": self.parent, "custom_job": self.job(request)}, "create")
        name: str = job.name
        return name

    def status(self, job_id: str) -> JobStatus:
        """The job's state, times and error message."""
        job = call(self.client, "get_custom_job", {"name": job_id}, f"get {job_id}")
        state = job.state.name
        return JobStatus(
            id=job.name or job_id,
            state=STATES.get(state, "running"),
            message=job.error.message if job.error.message else state,
            started_at=_seconds(job.start_time),
            finished_at=_seconds(job.end_time),
        )

    def cancel(self, job_id: str) -> None:
        """Ask Vertex to cancel the job; a job that already finished is left as it is."""
        try:
            call(self.client, "cancel_custom_job", {"name": job_id}, f"cancel {job_id}")
        except ValueError:
            if not self.status(job_id).done:
                raise

    # -- what is sent -----------------------------------------------------------------------------------------

    def job(self, request: JobRequest) -> Any:
        """The CustomJob resource for a request; ValueError naming the field Vertex would misread or refuse."""
        from google.cloud import aiplatform_v1 as v1
        from google.protobuf import duration_pb2

        check_env(request.env)
        container = v1.ContainerSpec(
            image_uri=request.image,
            command=list(request.command),
            env=[v1.EnvVar(name=k, value=v) for k, v in request.env.items()],
        )
        pools = [v1.WorkerPoolSpec(machine_spec=_machine(request), replica_count=1, container_spec=container)]
        if request.machine.replica_count > 1:
            extra = v1.WorkerPoolSpec(
                machine_spec=_machine(request),
                replica_count=request.machine.replica_count - 1,
                container_spec=container,
            )
            pools.append(extra)
        scheduling = v1.Scheduling(
            timeout=duration_pb2.Duration(seconds=max(1, round(request.timeout_s))),
            restart_job_on_worker_restart=False,
            strategy=v1.Scheduling.Strategy.SPOT
            if request.machine.spot
            else v1.Scheduling.Strategy.STRATEGY_UNSPECIFIED,
            disable_retries=request.max_retries == 0,  # Vertex retries internal errors unless told not to
        )
        spec = v1.CustomJobSpec(worker_pool_specs=pools, scheduling=scheduling)
        base = _base_output(request)
        if base is not None:
            spec.base_output_directory = v1.GcsDestination(output_uri_prefix=base)
        if self.service_account:
            spec.service_account = self.service_account
        return v1.CustomJob(
            display_name=f"relaunch-{request.run_id}-{request.step}"[:128],
            job_spec=spec,
            labels={
                "relaunch-run-id": label_value(request.run_id),
                "relaunch-step": request.step,
                KEY_LABEL: key_digest(request.key),
            },
        )

    def _find(self, key: str) -> str | None:
        digest = key_digest(key)
        request = {"parent": self.parent, "filter": f'labels.{KEY_LABEL}="{digest}"', "page_size": 10}
        page = call(self.client, "list_custom_jobs", request, "list")
        # The filter is the server's; checking the label again keeps a lax filter from handing us another job.
        matches = [job for job in page.custom_jobs if job.labels.get(KEY_LABEL) == digest]
        if not matches:
            return None
        oldest: str = min(matches, key=lambda job: (_seconds(job.create_time) or 0.0, job.name)).name
        return oldest


def _machine(request: JobRequest) -> Any:
    from google.cloud import aiplatform_v1 as v1

    machine = request.machine
    spec = v1.MachineSpec(machine_type=machine.machine_type)
    if machine.accelerator_type and machine.accelerator_count:
        try:
            spec.accelerator_type = v1.AcceleratorType.__members__[machine.accelerator_type]
        except KeyError:
            raise ValueError(f"machine.accelerator_type: unknown accelerator {machine.accelerator_type!r}") from None
        spec.accelerator_count = machine.accelerator_count
    return spec


def _base_output(request: JobRequest) -> str | None:
    """The job's output base (None for jobs that write no model, such as evaluation)."""
    base = request.output_dir
    if base is None:
        return None
    if not base.startswith("gs://") or not base.removeprefix("gs://").strip("/"):
        raise ValueError(f"output_dir must be a gs:// URI for Vertex AI, got {base[:200]!r}")
    return base.rstrip("/")


def _seconds(stamp: Any) -> float | None:
    """A proto-plus timestamp (a datetime, or None when unset) as epoch seconds."""
    if not stamp:
        return None
    return float(stamp.timestamp())
