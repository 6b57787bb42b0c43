"""CloudEvent function: Cloud Scheduler ticks retrain the pipeline they name."""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from relaunch.domain.model import FunctionName, Source
from relaunch.functions.pubsub_entry import receive
from relaunch.service.ingest import IngestService
from relaunch.triggers.scheduler import parse_schedule


@functions_framework.cloud_event
def schedule_tick(cloud_event: CloudEvent) -> None:
    """Malformed: acknowledged and dead-lettered. Transient failures raise, so the platform retries."""
    receive(FunctionName.SCHEDULE_TICK, Source.SCHEDULE, cloud_event, parse_schedule, IngestService.schedule)
