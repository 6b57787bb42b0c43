"""Reading a stored delivery again: the event it carries, parsed by the parser that read it on arrival.

A webhook delivery was verified when it arrived, and its signature and token headers are redacted in the inbox: it
is re-read as verified at receipt (triggers.verify.skip_verification), never re-signed to pass a check again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from relaunch.domain.model import Delivery, Source
from relaunch.triggers.cloudbuild import parse_build
from relaunch.triggers.drift import parse_drift
from relaunch.triggers.errors import Malformed, decode_json_object
from relaunch.triggers.github import parse_verified_github
from relaunch.triggers.pubsub import PubSubMessage, from_cloudevent_data
from relaunch.triggers.retrain import parse_retrain
from relaunch.triggers.scheduler import parse_schedule
from relaunch.triggers.verify import AT_RECEIPT, skip_verification
from relaunch.triggers.vertex_jobs import parse_job_log
from relaunch.triggers.wandb import parse_verified_wandb

# Inbox sources of the Pub/Sub functions, and the parser of each one's message.
PUBSUB_PARSERS: dict[str, Callable[[PubSubMessage], Any]] = {
    Source.DRIFT: parse_drift,
    Source.SCHEDULE: parse_schedule,
    Source.CLOUDBUILD: parse_build,
    Source.RETRAIN: parse_retrain,
    Source.VERTEX: parse_job_log,
}
NO_LIMIT = 2**62  # a stored body was already within the limit when it arrived


def reparse(delivery: Delivery) -> Any:
    """The event a stored delivery carries, parsed again; a TriggerError if it never was parseable, or if retention
    dropped its body."""
    if delivery.body_dropped_at is not None:
        day = time.strftime("%Y-%m-%d", time.localtime(delivery.body_dropped_at))
        raise Malformed(
            f"delivery {delivery.key}: its body was dropped on {day} by retention (RELAUNCH_RETAIN_BODY_DAYS):"
            " it cannot be replayed",
            field="body",
        )
    body = delivery.body.encode("utf-8")
    if delivery.source == Source.GITHUB:
        return parse_verified_github(skip_verification("github", delivery.headers, body, AT_RECEIPT, max_body=NO_LIMIT))
    if delivery.source == Source.WANDB:
        return parse_verified_wandb(skip_verification("wandb", delivery.headers, body, AT_RECEIPT, max_body=NO_LIMIT))
    parse = PUBSUB_PARSERS.get(delivery.source)
    if parse is None:
        raise Malformed(f"deliveries from {delivery.source!r} cannot be replayed", field="source")
    return parse(from_cloudevent_data(decode_json_object(body, field="body")))
