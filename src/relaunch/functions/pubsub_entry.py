"""What every Pub/Sub function does: key the message, keep it in the inbox, parse it, hand it to the service.

A malformed message is acknowledged and dead-lettered (retrying it forever helps nobody); a lost race is tried again
in the request, then answered 503 like a transient failure (races.py), so the platform redelivers it. Anything else
that fails is a message nobody foresaw: logged once with its traceback, dead-lettered and acknowledged, never looped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from cloudevents.http import CloudEvent
from werkzeug.exceptions import HTTPException

from relaunch import bootstrap, logs
from relaunch.domain.effects import pubsub_delivery
from relaunch.domain.model import Delivery, FunctionName, Source
from relaunch.functions.races import settle
from relaunch.service.ingest import IngestService, Reply
from relaunch.triggers.errors import Malformed, TriggerError, printable, require_text
from relaunch.triggers.pubsub import PubSubMessage, from_cloudevent_data

log = logging.getLogger(__name__)


def receive(
    function: FunctionName,
    source: Source,
    cloud_event: CloudEvent,
    parse: Callable[[PubSubMessage], Any],
    act: Callable[[IngestService, Any, Delivery], Reply],
) -> None:
    """Deliver one Pub/Sub CloudEvent to the service under the key `pubsub:<function>:<messageId>`."""
    app = bootstrap.app()
    raw = json.dumps(cloud_event.data, default=str)  # ASCII: a lone surrogate travels as its escape
    # Kept as the delivery's headers: escaped, so a hostile attribute is refused below rather than breaking the write.
    attributes = {printable(k): printable(v) for k, v in cloud_event.get_attributes().items()}
    try:
        require_text(cloud_event.get_attributes(), prefix="attributes")
        message: PubSubMessage | None = from_cloudevent_data(cloud_event.data, event_id=cloud_event["id"])
    except TriggerError as exc:
        message, error = None, exc
    # Eventarc's event id is the message id: even a message whose data cannot be read is deduped on it.
    message_id = message.message_id if message else printable(cloud_event["id"])
    delivery = Delivery(key=pubsub_delivery(function, message_id), source=source, headers=attributes, body=raw)
    logs.bind(delivery=delivery.key)
    what = f"{function} {message_id!r}"
    try:
        if message is None:
            reply = settle(what, lambda: app.ingest.refuse(delivery, error))
        else:
            reply = settle(what, lambda: _deliver(app.ingest, message, delivery, parse, act))
    except HTTPException:
        raise  # settle's 503: redelivered
    except Exception as exc:  # input nobody foresaw broke us: one ERROR to fix it by, and the message is not looped
        log.exception("%s: cannot be processed; dead-lettering it", what)
        reply = _give_up(app, delivery, exc)
    log.info("%s: %s", what, reply.body.get("outcome"))


def _give_up(app: bootstrap.App, delivery: Delivery, exc: Exception) -> Reply:
    """Acknowledge an unprocessable message: inbox row and dead letter (replayable), or at least the dead letter."""
    error = Malformed(f"unprocessable ({type(exc).__name__}); kept for replay after a fix")
    try:
        return app.ingest.refuse(delivery, error)
    except Exception:  # the inbox row itself cannot be written (say, hostile attributes): the raw body is ASCII JSON
        app.store.dead_letter(delivery.source, error.message, delivery.body)
        return Reply(200, {"outcome": "dead-lettered", "reason": error.message})


def _deliver(
    ingest: IngestService,
    message: PubSubMessage,
    delivery: Delivery,
    parse: Callable[[PubSubMessage], Any],
    act: Callable[[IngestService, Any, Delivery], Reply],
) -> Reply:
    """Parse the message and hand it to the service; a malformed one is refused (dead-lettered)."""
    try:
        event = parse(message)
    except TriggerError as exc:
        return ingest.refuse(delivery, exc)
    return act(ingest, event, delivery)
