"""CloudEvent function: commands from the relaunch-commands topic move pipeline runs.

The same topic carries manual retrain requests (the `retrain` GitHub Action's Pub/Sub mode); those go to the inbox
like every inbound event and start a run.
"""

from __future__ import annotations

import json
import logging
import time

import functions_framework
from cloudevents.http import CloudEvent
from pydantic import ValidationError

from relaunch import bootstrap, logs
from relaunch.domain.commands import COMMANDS_TOPIC, hold_s, parse_command
from relaunch.domain.effects import pubsub_delivery
from relaunch.domain.model import FunctionName, Source
from relaunch.functions.races import settle
from relaunch.service.orchestrator import UnknownRun
from relaunch.triggers.errors import TriggerError, printable
from relaunch.triggers.pubsub import from_cloudevent_data
from relaunch.triggers.retrain import is_retrain, parse_retrain

log = logging.getLogger(__name__)


@functions_framework.cloud_event
def orchestrator(cloud_event: CloudEvent) -> None:
    """Malformed or unknown: acknowledge and dead-letter. Lost races and transient failures: 503, redelivered."""
    app = bootstrap.app()
    try:
        data = from_cloudevent_data(cloud_event.data, event_id=cloud_event["id"]).json()
        if is_retrain(data):  # the inbox's path, loaded only by a process that gets a retrain request
            from relaunch.functions.pubsub_entry import receive  # noqa: PLC0415
            from relaunch.service.ingest import IngestService  # noqa: PLC0415

            receive(FunctionName.ORCHESTRATOR, Source.RETRAIN, cloud_event, parse_retrain, IngestService.retrain)
            return
        command = parse_command(data)
        logs.bind(
            delivery=pubsub_delivery(FunctionName.ORCHESTRATOR, printable(cloud_event["id"])),
            run_id=command.run_id,
            pipeline=getattr(command, "pipeline", None),  # report_skip and label_approval carry it; the rest name a run
        )
        time.sleep(hold_s(command, time.time()))  # Pub/Sub delivers a look at a rollout at once: due at its time
        settle(f"command {cloud_event['id']!r}", lambda: app.orchestrator.handle(command))
        log.info("command %s for run %s: handled", command.type, command.run_id)
    except (TriggerError, ValidationError, UnknownRun) as exc:
        log.warning("dead-lettering command %r: %s", cloud_event["id"], printable(exc))
        app.store.dead_letter(COMMANDS_TOPIC, printable(exc)[:2000], json.dumps(cloud_event.data, default=str))
