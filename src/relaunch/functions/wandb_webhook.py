"""HTTP function: W&B automation webhooks. Refuses to start without a token or secret (fail closed)."""

from __future__ import annotations

import flask
import functions_framework

from relaunch import bootstrap
from relaunch.functions.guard import require_secret, wandb_credentials
from relaunch.functions.races import Redeliver, settle
from relaunch.functions.responses import error_response, reply_response, retry_response, too_large
from relaunch.settings import reveal
from relaunch.triggers.errors import TriggerError
from relaunch.triggers.wandb import MAX_BODY, parse_wandb

_settings = bootstrap.app().settings
require_secret(
    "wandb_webhook",
    bool(reveal(_settings.wandb_webhook_token) or reveal(_settings.wandb_webhook_secret)),
    "RELAUNCH_WANDB_WEBHOOK_TOKEN or RELAUNCH_WANDB_WEBHOOK_SECRET",
)


@functions_framework.http
def wandb_webhook(request: flask.Request) -> tuple[str, int, dict[str, str]]:
    """Authenticate, validate, dedupe on the event's content, persist, publish; answer fast."""
    app = bootstrap.app()
    limit = min(app.settings.max_body_bytes, MAX_BODY)  # a rendered W&B template is a few hundred bytes
    if refused := too_large(request, limit):
        return refused
    body, headers = request.get_data(cache=False), dict(request.headers)
    try:
        checked, token, secret = wandb_credentials(app.settings, headers, body)
        event = parse_wandb(checked, body, token=token, secret=secret, max_body=limit)
        reply = settle("a W&B delivery", lambda: app.ingest.wandb(event, headers, body))
    except TriggerError as exc:
        return error_response(exc)
    except Redeliver as exc:  # a race lost every time, or the store is unreachable: nothing was kept
        return retry_response(exc)
    return reply_response(reply)
