"""CloudEvent function: Cloud Build statuses (the cloud-builds topic) advance the run that asked for the build."""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from relaunch.domain.model import FunctionName, Source
from relaunch.functions.pubsub_entry import receive
from relaunch.service.ingest import IngestService
from relaunch.triggers.cloudbuild import parse_build


@functions_framework.cloud_event
def build_status(cloud_event: CloudEvent) -> None:
    """Malformed: acknowledged and dead-lettered. Transient failures raise, so the platform retries."""
    receive(FunctionName.BUILD_STATUS, Source.CLOUDBUILD, cloud_event, parse_build, IngestService.build)
