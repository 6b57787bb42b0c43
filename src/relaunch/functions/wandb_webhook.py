"""HTTP function: W&B automation webhooks. Serves nothing without a token or secret (fail closed)."""

from __future__ import annotations

import logging

import flask
import functions_framework

from relaunch import logs
from relaunch.domain.model import FunctionName
from relaunch.functions.guard import NotServing, serving, wandb_delivery
from relaunch.functions.races import Redeliver, settle
from relaunch.functions.responses import error_response, reply_response, retry_response, too_large, unavailable
from relaunch.triggers.errors import TriggerError, printable
from relaunch.triggers.wandb import MAX_BODY, parse_verified_wandb

log = logging.getLogger(__name__)


@functions_framework.http
def wandb_webhook(request: flask.Request) -> tuple[str, int, dict[str, str]]:
    """Authenticate, validate, dedupe on the event's content, persist, publish; answer fast."""
    try:
        app = serving(FunctionName.WANDB_WEBHOOK)
    except NotServing as exc:
        return unavailable(str(exc))
    limit = min(app.settings.max_body_bytes, MAX_BODY)  # a rendered W&B template is a few hundred bytes
    if refused := too_large(request, limit):
        return refused
    body, headers = request.get_data(cache=False), dict(request.headers)
    try:
        event = parse_verified_wandb(wandb_delivery(app.settings, headers, body, max_body=limit))
        logs.bind(delivery=event.dedupe_key)
        reply = settle("a W&B delivery", lambda: app.ingest.wandb(event, headers, body))
    except TriggerError as exc:
        log.info("W&B delivery refused with %d: %s", exc.status, printable(exc))
        return error_response(exc)
    except Redeliver as exc:  # a race lost every time, or the store is unreachable: nothing was kept
        return retry_response(exc)
    log.info("W&B delivery %s: %d %s", event.dedupe_key, reply.status, reply.body.get("outcome"))
    return reply_response(reply)
