"""What every Pub/Sub function does: key the message, keep it in the inbox, parse it, hand it to the service.

A malformed message is acknowledged and dead-lettered (retrying it forever helps nobody); anything else that fails
raises, so the platform redelivers it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from cloudevents.http import CloudEvent

from relaunch import bootstrap
from relaunch.pipelines.ingest import IngestService, Reply
from relaunch.pipelines.model import Delivery
from relaunch.triggers.errors import TriggerError
from relaunch.triggers.pubsub import PubSubMessage, from_cloudevent_data

log = logging.getLogger(__name__)


def receive(
    function: str,
    source: str,
    cloud_event: CloudEvent,
    parse: Callable[[PubSubMessage], Any],
    act: Callable[[IngestService, Any, Delivery], Reply],
) -> None:
    """Deliver one Pub/Sub CloudEvent to the service under the key `pubsub:<function>:<messageId>`."""
    app = bootstrap.app()
    raw = json.dumps(cloud_event.data, default=str)
    attributes = {k: str(v) for k, v in cloud_event.get_attributes().items()}
    try:
        message: PubSubMessage | None = from_cloudevent_data(cloud_event.data, event_id=cloud_event["id"])
    except TriggerError as exc:
        message, error = None, exc
    # Eventarc's event id is the message id: even a message whose data cannot be read is deduped on it.
    message_id = message.message_id if message else str(cloud_event["id"])
    delivery = Delivery(key=f"pubsub:{function}:{message_id}", source=source, headers=attributes, body=raw)
    if message is None:
        reply = app.ingest.refuse(delivery, error)
    else:
        try:
            event = parse(message)
        except TriggerError as exc:
            reply = app.ingest.refuse(delivery, exc)
        else:
            reply = act(app.ingest, event, delivery)
    log.info("%s %s: %s", function, message_id, reply.body.get("outcome"))
