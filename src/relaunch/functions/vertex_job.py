"""CloudEvent function: Vertex AI CustomJob service log entries (the relaunch-vertex-jobs topic, fed by a log sink)
wake the runs waiting on that job, so a finished job moves its run on in seconds instead of at the next reconcile
tick. The entry is only a wake-up: the orchestrator reads the job's state from Vertex (triggers/vertex_jobs.py)."""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from relaunch.domain.model import FunctionName, Source
from relaunch.functions.pubsub_entry import receive
from relaunch.service.ingest import IngestService
from relaunch.triggers.vertex_jobs import parse_job_log


@functions_framework.cloud_event
def vertex_job(cloud_event: CloudEvent) -> None:
    """Malformed: acknowledged and dead-lettered. Transient failures raise, so the platform retries."""
    receive(FunctionName.VERTEX_JOB, Source.VERTEX, cloud_event, parse_job_log, IngestService.vertex_job)
