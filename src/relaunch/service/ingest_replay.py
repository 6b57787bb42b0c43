"""Reading a delivery again without its signature: replays of stored deliveries, and development mode.

The parsers always verify. A delivery that was verified on arrival (its signature header is redacted in the inbox)
or that development mode accepts unsigned is re-signed with a one-off key, so it goes through the very same parser.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any

from relaunch.domain.model import Delivery
from relaunch.triggers.cloudbuild import parse_build
from relaunch.triggers.drift import parse_drift
from relaunch.triggers.errors import Malformed, decode_json_object
from relaunch.triggers.github import parse_github
from relaunch.triggers.pubsub import PubSubMessage, from_cloudevent_data
from relaunch.triggers.retrain import parse_retrain
from relaunch.triggers.scheduler import parse_schedule
from relaunch.triggers.signing import github_signature, wandb_signature
from relaunch.triggers.wandb import parse_wandb

# Inbox sources of the Pub/Sub functions, and the parser of each one's message.
PUBSUB_PARSERS: dict[str, Callable[[PubSubMessage], Any]] = {
    "drift": parse_drift,
    "schedule": parse_schedule,
    "cloudbuild": parse_build,
    "retrain": parse_retrain,
}
NO_LIMIT = 2**62  # a stored body was already within the limit when it arrived


def resigned(
    headers: Mapping[str, str], body: bytes, header: str, sign: Callable[[str, bytes], str]
) -> tuple[dict[str, str], str]:
    """`headers` with `header` replaced by the signature of `body` under a one-off key, and that key."""
    key = secrets.token_hex(16)
    kept = {k: v for k, v in headers.items() if k.lower() not in (header.lower(), "authorization")}
    return {**kept, header: sign(key, body)}, key


def trusted_github(headers: Mapping[str, str], body: bytes) -> tuple[dict[str, str], str]:
    """Headers and secret under which parse_github accepts this (already trusted) delivery."""
    return resigned(headers, body, "X-Hub-Signature-256", github_signature)


def trusted_wandb(headers: Mapping[str, str], body: bytes) -> tuple[dict[str, str], str]:
    """Headers and secret under which parse_wandb accepts this (already trusted) delivery, with no token."""
    return resigned(headers, body, "X-Wandb-Signature", wandb_signature)


def reparse(delivery: Delivery) -> Any:
    """The event a stored delivery carries, parsed again; a TriggerError if it never was parseable."""
    body = delivery.body.encode("utf-8")
    if delivery.source == "github":
        headers, secret = trusted_github(delivery.headers, body)
        return parse_github(headers, body, secret=secret, max_body=NO_LIMIT)
    if delivery.source == "wandb":
        headers, secret = trusted_wandb(delivery.headers, body)
        return parse_wandb(headers, body, token=None, secret=secret, max_body=NO_LIMIT)
    parse = PUBSUB_PARSERS.get(delivery.source)
    if parse is None:
        raise Malformed(f"deliveries from {delivery.source!r} cannot be replayed", field="source")
    return parse(from_cloudevent_data(decode_json_object(body, field="body")))
