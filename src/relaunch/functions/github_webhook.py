"""HTTP function: GitHub webhook deliveries. Serves nothing without RELAUNCH_GITHUB_WEBHOOK_SECRET (fail closed)."""

from __future__ import annotations

import logging

import flask
import functions_framework

from relaunch import logs
from relaunch.domain import effects
from relaunch.domain.model import FunctionName
from relaunch.functions.guard import NotServing, github_delivery, serving
from relaunch.functions.races import Redeliver, settle
from relaunch.functions.responses import error_response, reply_response, retry_response, too_large, unavailable
from relaunch.triggers.errors import TriggerError, printable
from relaunch.triggers.github import parse_verified_github

log = logging.getLogger(__name__)


@functions_framework.http
def github_webhook(request: flask.Request) -> tuple[str, int, dict[str, str]]:
    """Verify, validate, dedupe, persist, publish; answer fast."""
    try:
        app = serving(FunctionName.GITHUB_WEBHOOK)
    except NotServing as exc:
        return unavailable(str(exc))
    if refused := too_large(request, app.settings.max_body_bytes):  # before reading the body into memory
        return refused
    body, headers = request.get_data(cache=False), dict(request.headers)
    try:
        event = parse_verified_github(github_delivery(app.settings, headers, body))
        logs.bind(delivery=effects.github_delivery(event.delivery_id))
        reply = settle("a GitHub delivery", lambda: app.ingest.github(event, headers, body))
    except TriggerError as exc:
        log.info("GitHub delivery refused with %d: %s", exc.status, printable(exc))
        return error_response(exc)
    except Redeliver as exc:  # a race lost every time, or the store is unreachable: nothing was kept
        return retry_response(exc)
    log.info("GitHub delivery %s: %d %s", printable(event.delivery_id), reply.status, reply.body.get("outcome"))
    return reply_response(reply)
