"""W&B Launch training backend: each job is an item on a Launch queue; W&B's launch agent runs it (Vertex AI).

`wandb.sdk.launch.launch_add` cannot be pointed at a host: it builds its own `LaunchApi()` and `wandb.Api()` from
the process's global settings. So this adapter does what `launch_add` does for a docker-image job, with a
`LaunchApi` bound to `base_url`: `construct_launch_spec` + `LaunchApi.push_to_run_queue`.

Idempotency: the job's key rides in the launch spec (`overrides.run_config.relaunch_key`, which also lands in the
W&B run's config); `submit` looks for a queue item carrying it before enqueueing. Job ids are
`entity/project/queue/<run queue item id>`, the form `wandb.Api.queued_run` takes.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from relaunch.adapters.wandb import check_settings, make_api, translate_errors
from relaunch.domain.jobs import check_env
from relaunch.domain.model import JobRequest, JobState, JobStatus

# The job's resource_args key. W&B's Vertex runner reads `vertex` and falls back to `gcp-vertex`, the historical
# spelling (wandb/sdk/launch/runner/vertex_runner.py); a queue's resource *type* is still named `gcp-vertex`.
RESOURCE = "vertex"
QUEUE_RESOURCE_TYPE = "gcp-vertex"  # what wandb.Api().upsert_run_queue accepts for a Vertex queue
KEY_FIELD = "relaunch_key"
QUEUE_PROJECT = "model-registry"  # wandb.sdk.launch.utils.LAUNCH_DEFAULT_PROJECT: where entity queues live
# W&B queue priorities: 0 critical, 1 high, 2 medium, 3 low. relaunch's are 0..100, higher first.
PRIORITY_LEVELS = ((75, 0), (50, 1), (25, 2))
LOWEST_PRIORITY = 3
_LABEL_CHARS = re.compile(r"[^a-z0-9_-]")

# Run states (W&B) -> job states (relaunch), with what the message says.
RUN_STATES: dict[str, tuple[JobState, str]] = {
    "pending": ("queued", "W&B run pending"),
    "running": ("running", "W&B run running"),
    "preempting": ("running", "W&B run being preempted"),
    "preempted": ("queued", "W&B run preempted; waiting to be resumed"),
    "finished": ("succeeded", "W&B run finished"),
    "failed": ("failed", "code error: W&B run failed"),
    "crashed": ("failed", "infrastructure failure: W&B run crashed (no heartbeat)"),
    "killed": ("cancelled", "W&B run killed"),
}

# The one query of relaunch's own: the SDK's listing of a queue's items (QueuedRun._get_run_queue_item_legacy),
# plus each item's run spec, which carries the job's key. No SDK query selects `runSpec` on a queue item; the README
# ("W&B Launch") says why relying on it is safe. The W&B test server refuses any other field the SDK does not send.
BEYOND_SDK: tuple[str, ...] = ("query.project.runQueue.runQueueItems.edges.node.runSpec",)
_ITEMS = """
query RelaunchQueueItems($projectName: String!, $entityName: String!, $runQueue: String!) {
  project(name: $projectName, entityName: $entityName) {
    runQueue(name: $runQueue) {
      runQueueItems { edges { node { id runSpec } } }
    }
  }
}
"""


def wandb_priority(priority: int) -> int:
    """relaunch's 0..100 (higher first) onto W&B's 0 critical .. 3 low."""
    for floor, level in PRIORITY_LEVELS:
        if priority >= floor:
            return level
    return LOWEST_PRIORITY


def resource_args(request: JobRequest, staging_bucket: str) -> dict[str, Any]:
    """Vertex resource arguments: worker pools from the job's machine, with the job's environment.

    Vertex's first pool is the chief and takes one replica; the others go to a second pool
    (https://cloud.google.com/vertex-ai/docs/training/distributed-training), as the Vertex adapter does. The job's
    output folder is the CustomJob's base output directory (W&B's runner passes `vertex.spec.base_output_dir` to
    aiplatform.CustomJob), from which Vertex sets AIP_MODEL_DIR and its siblings: the request sets none itself.
    """
    check_env(request.env)
    machine: dict[str, Any] = {"machine_type": request.machine.machine_type}
    if request.machine.accelerator_type and request.machine.accelerator_count:
        machine.update(
            accelerator_type=request.machine.accelerator_type, accelerator_count=request.machine.accelerator_count
        )
    container = {
        "image_uri": "${image_uri}",  # W&B's macro: the job's docker image
        "env": [{"name": k, "value": v} for k, v in sorted(request.env.items())],
    }
    pools = [{"machine_spec": machine, "replica_count": 1, "container_spec": container}]
    if request.machine.replica_count > 1:
        pools.append({**pools[0], "replica_count": request.machine.replica_count - 1})
    labels = {"relaunch_run_id": _LABEL_CHARS.sub("-", request.run_id.lower())[:63]}
    spec = {"worker_pool_specs": pools, "staging_bucket": staging_bucket, "labels": labels}
    if request.output_dir:
        spec["base_output_dir"] = request.output_dir
    return {RESOURCE: {"spec": spec, "run": {"timeout": int(request.timeout_s)}}}


def run_config(request: JobRequest) -> dict[str, str]:
    """What the W&B run's config records about the job (the key makes submission idempotent)."""
    return {KEY_FIELD: request.key, "relaunch_run_id": request.run_id, "relaunch_step": request.step}


class WandbLaunchBackend:
    """A `TrainingBackend` that puts jobs on a W&B Launch queue and follows their queue items and runs."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        entity: str,
        project: str,
        queue: str,
        staging_bucket: str,
        api: Any | None = None,
    ) -> None:
        check_settings("WandbLaunchBackend", entity=entity, project=project, queue=queue, staging_bucket=staging_bucket)
        if not staging_bucket.startswith("gs://") or len(staging_bucket) <= len("gs://"):
            raise ValueError(f"WandbLaunchBackend: staging_bucket must be a gs:// URI, got {staging_bucket!r}")
        if api is None:
            check_settings("WandbLaunchBackend", api_key=api_key, base_url=base_url)
        self.base_url = base_url
        self.entity, self.project, self.queue = entity, project, queue
        self.staging_bucket = staging_bucket
        self._api_key = api_key
        self._api = api

    def __repr__(self) -> str:  # never the key
        return f"WandbLaunchBackend(base_url={self.base_url!r}, queue={self.entity}/{self.queue!r})"

    @property
    def api(self) -> Any:
        """The LaunchApi, made (and the key verified) on first use."""
        if self._api is None:
            self._api = make_api(self._api_key, self.base_url, launch=True)
        return self._api

    # -- TrainingBackend --------------------------------------------------------------------------------------

    def submit(self, request: JobRequest) -> str:
        """Enqueue the job unless an item with its key is already on the queue; returns the job id."""
        if not request.image:
            raise ValueError(f"job {request.key}: image must name a container image for W&B Launch")
        if not request.command:
            raise ValueError(f"job {request.key}: command must not be empty")
        existing = self._find(request.key)
        if existing is not None:
            return self._job_id(existing)
        spec = self._launch_spec(request)
        with translate_errors(f"W&B Launch: enqueue on {self.entity}/{self.queue}"):
            pushed = self.api.push_to_run_queue(self.queue, spec, None, QUEUE_PROJECT, wandb_priority(request.priority))
        if not pushed or not pushed.get("runQueueItemId"):
            raise ValueError(
                f"W&B Launch refused the job on queue {self.entity}/{self.queue}: "
                "does the queue exist, and is prioritization enabled on it?"
            )
        return self._job_id(str(pushed["runQueueItemId"]))

    def status(self, job_id: str) -> JobStatus:
        """The queue item's state, then its W&B run's once an agent started one (KeyError if unknown)."""
        item = self._item(job_id)
        if item is None:
            raise KeyError(job_id)
        if item.get("state") == "FAILED":  # the reason is on the queue's page: no SDK query reads it
            entity, _, queue, item_id = _split(job_id)
            message = f"W&B Launch failed queue item {item_id} (its reason is on queue {entity}/{queue} in W&B)"
            return JobStatus(id=job_id, state="failed", message=message)
        run_name = item.get("associatedRunId")
        if not run_name:
            return JobStatus(id=job_id, state="queued", message=f"queue item {str(item.get('state')).lower()}")
        run = self._run(run_name)
        if run is None:
            return JobStatus(id=job_id, state="queued", message=f"W&B run {run_name} starting")
        state, message = RUN_STATES.get(run.state, ("running", f"W&B run {run.state}"))
        done = state in ("succeeded", "failed", "cancelled")
        return JobStatus(
            id=job_id,
            state=state,
            message=f"{message} ({self.entity}/{self.project}/{run_name})",
            started_at=_timestamp(getattr(run, "created_at", None)),
            finished_at=_timestamp(getattr(run, "heartbeat_at", None)) if done else None,
        )

    def cancel(self, job_id: str) -> None:
        """Remove a waiting item from the queue, or ask its running W&B run to stop (a no-op once gone)."""
        item = self._item(job_id)
        if item is None:
            return
        run = self._run(item["associatedRunId"]) if item.get("associatedRunId") else None
        with translate_errors(f"W&B Launch: cancel {job_id}"):
            if run is not None:
                run.stop()
            else:
                entity, project, queue, item_id = _split(job_id)
                self.api.queued_run(entity, project, queue, item_id, QUEUE_PROJECT).delete()

    # -- W&B lookups ------------------------------------------------------------------------------------------

    def _launch_spec(self, request: JobRequest) -> dict[str, Any]:
        from wandb.sdk.launch.utils import construct_launch_spec, validate_launch_spec_source

        with translate_errors(f"W&B Launch: launch spec of {request.key}"):
            spec: dict[str, Any] = construct_launch_spec(
                uri=None,
                job=None,
                api=self.api,
                name=f"{request.run_id}-{request.step}",
                project=self.project,
                entity=self.entity,
                docker_image=request.image,
                resource=None,  # the queue's own resource type (gcp-vertex)
                entry_point=list(request.command),
                version=None,
                resource_args=resource_args(request, self.staging_bucket),
                launch_config={"overrides": {"run_config": run_config(request)}},
                run_id=None,
                repository=None,
                author=None,
            )
            validate_launch_spec_source(spec)
        return spec

    def _find(self, key: str) -> str | None:
        """The id of the queue item carrying `key`, if any."""
        variables = {"projectName": QUEUE_PROJECT, "entityName": self.entity, "runQueue": self.queue}
        with translate_errors("W&B Launch: list queue items"):
            data: dict[str, Any] = self.api._service_api.execute_graphql(_ITEMS, variables) or {}
        queue = (data.get("project") or {}).get("runQueue")
        if queue is None:
            raise ValueError(f"W&B Launch queue {self.entity}/{self.queue} not found")
        for edge in (queue.get("runQueueItems") or {}).get("edges") or []:
            node = edge.get("node") or {}
            if _key_of(node.get("runSpec")) == key:
                return str(node["id"])
        return None

    def _item(self, job_id: str) -> dict[str, Any] | None:
        """The queue item (id, state, associatedRunId), read by the SDK's own query; None once it is gone."""
        entity, project, queue, item_id = _split(job_id)
        with translate_errors(f"W&B Launch: read {job_id}"):
            item: dict[str, Any] | None = self.api.queued_run(
                entity, project, queue, item_id, QUEUE_PROJECT
            )._get_item()
        return item

    def _run(self, run_name: str) -> Any | None:
        from wandb.apis.public.runs import RunNotFoundError

        with translate_errors(f"W&B: read run {run_name}"):
            try:
                self.api.flush()  # the API caches runs; a run's state is what we came for
                return self.api.run(f"{self.entity}/{self.project}/{run_name}")
            except RunNotFoundError:
                return None
            except Exception as exc:  # the public API wraps "not found" in CommError
                if isinstance(exc.__context__, RunNotFoundError) or isinstance(exc.__cause__, RunNotFoundError):
                    return None
                raise

    def _job_id(self, item_id: str) -> str:
        return f"{self.entity}/{self.project}/{self.queue}/{item_id}"


def _split(job_id: str) -> tuple[str, str, str, str]:
    parts = job_id.split("/", 3)  # the item id is base64 and may itself hold a "/"
    if len(parts) != 4 or not all(parts):
        raise ValueError(f"W&B Launch job id must be entity/project/queue/item, got {job_id!r}")
    return parts[0], parts[1], parts[2], parts[3]


def _key_of(run_spec: Any) -> str | None:
    if isinstance(run_spec, str):
        try:
            run_spec = json.loads(run_spec)
        except ValueError:
            return None
    if not isinstance(run_spec, dict):
        return None
    value = ((run_spec.get("overrides") or {}).get("run_config") or {}).get(KEY_FIELD)
    return value if isinstance(value, str) else None


def _timestamp(value: Any) -> float | None:
    """Epoch seconds of W&B's ISO timestamps (UTC, usually without an offset)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
