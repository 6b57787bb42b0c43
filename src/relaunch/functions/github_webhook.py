"""HTTP function: GitHub webhook deliveries. Refuses to start without RELAUNCH_GITHUB_WEBHOOK_SECRET (fail closed)."""

from __future__ import annotations

import flask
import functions_framework

from relaunch import bootstrap
from relaunch.functions.guard import github_credentials, require_secret
from relaunch.functions.races import Redeliver, settle
from relaunch.functions.responses import error_response, reply_response, retry_response, too_large
from relaunch.triggers.errors import TriggerError
from relaunch.triggers.github import parse_github

require_secret(
    "github_webhook", bootstrap.app().settings.webhook_secret() is not None, "RELAUNCH_GITHUB_WEBHOOK_SECRET"
)


@functions_framework.http
def github_webhook(request: flask.Request) -> tuple[str, int, dict[str, str]]:
    """Verify, validate, dedupe, persist, publish; answer fast."""
    app = bootstrap.app()
    if refused := too_large(request, app.settings.max_body_bytes):  # before reading the body into memory
        return refused
    body, headers = request.get_data(cache=False), dict(request.headers)
    try:
        signed, secret = github_credentials(app.settings, headers, body)
        event = parse_github(signed, body, secret=secret, max_body=app.settings.max_body_bytes)
        reply = settle("a GitHub delivery", lambda: app.ingest.github(event, headers, body))
    except TriggerError as exc:
        return error_response(exc)
    except Redeliver as exc:  # a race lost every time, or the store is unreachable: nothing was kept
        return retry_response(exc)
    return reply_response(reply)
