"""CloudEvent function: drift alerts (Monitoring incidents, Model Monitoring logs, the generic schema) retrain."""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from relaunch.domain.model import FunctionName, Source
from relaunch.functions.pubsub_entry import receive
from relaunch.service.ingest import IngestService
from relaunch.triggers.drift import parse_drift


@functions_framework.cloud_event
def drift_alert(cloud_event: CloudEvent) -> None:
    """Malformed: acknowledged and dead-lettered. Transient failures raise, so the platform retries."""
    receive(FunctionName.DRIFT_ALERT, Source.DRIFT, cloud_event, parse_drift, IngestService.drift)
