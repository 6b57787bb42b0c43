"""Vertex AI CustomJob service log entries (routed by a Cloud Logging sink to Pub/Sub) to typed events; no I/O.

Vertex AI publishes no event when a CustomJob ends: a CustomJob has no notification setting, Eventarc has no direct
Vertex AI event, and its audit logs record API calls (CreateCustomJob, CancelCustomJob), not state changes. What it
does write is a handful of service log entries per job under the monitored resource `ml_job`
(labels `job_id`, `project_id`, `task_name`), `task_name` "service" for Vertex's own lifecycle messages and
"workerpool0-0"… for the container's output; `gcloud ai custom-jobs stream-logs` reads them with
`resource.type="ml_job" resource.labels.job_id="<id>"`. Deploy routes `task_name="service"` entries (a few per job,
never the training script's lines) to the `relaunch-vertex-jobs` topic.

Each entry is only a wake-up: the job id it names. The message text is never trusted or parsed for a state (its
wording is not a contract, and anyone who may publish to the topic could forge it); the orchestrator reads the job's
state from the Vertex API. So a missed or reworded entry costs latency, never a wrong decision, and the reconcile
tick remains the backstop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from relaunch.triggers.errors import Unprocessable, optional, require
from relaunch.triggers.pubsub import PubSubMessage

JOB_RESOURCE = "ml_job"
SERVICE_TASK = "service"
# The sink's filter: Vertex's own lifecycle messages of every CustomJob, not the container's output.
SINK_FILTER = f'resource.type="{JOB_RESOURCE}" AND resource.labels.task_name="{SERVICE_TASK}"'
_JOB_ID = re.compile(r"^[0-9]{1,30}$")  # CustomJob ids are numbers (int64)
_JOB_NAME = re.compile(r"^projects/[^/]{1,100}/locations/[^/]{1,64}/customJobs/(?P<id>[0-9]{1,30})$")
_PROJECT = re.compile(r"^[a-z0-9][a-z0-9.:-]{0,99}$")  # project ids, numbers, and domain-scoped ids


@dataclass(frozen=True)
class JobLogEvent:
    """A Vertex AI CustomJob logged something: which job, in which project."""

    job_id: str  # the numeric id, the last segment of projects/P/locations/L/customJobs/ID
    project: str | None
    task: str | None


def parse_job_log(message: PubSubMessage) -> JobLogEvent:
    """Read a LogEntry forwarded by the jobs sink; anything but an `ml_job` entry naming a job is a TriggerError."""
    entry = message.json()
    kind = require(entry, "resource.type", str)
    if kind != JOB_RESOURCE:
        raise Unprocessable(f"resource.type {kind[:60]!r} is not {JOB_RESOURCE!r}", field="resource.type")
    project = optional(entry, "resource.labels.project_id", str)
    if project is not None and not _PROJECT.match(project):
        raise Unprocessable(f"{project[:60]!r} is not a project id", field="resource.labels.project_id")
    return JobLogEvent(
        job_id=_job_id(require(entry, "resource.labels.job_id", str)),
        project=project,
        task=optional(entry, "resource.labels.task_name", str),
    )


def _job_id(raw: str) -> str:
    """The bare id; a full CustomJob resource name is accepted too and reduced to its id."""
    value = raw.strip()
    named = _JOB_NAME.match(value)
    if named:
        return named["id"]
    if not _JOB_ID.match(value):
        raise Unprocessable(f"{value[:60]!r} is not a CustomJob id", field="resource.labels.job_id")
    return value


def names_job(job_name: str, job_id: str) -> bool:
    """Whether a CustomJob resource name (what relaunch keeps per run) is the job with this id."""
    named = _JOB_NAME.match(job_name)
    return named is not None and named["id"] == job_id
