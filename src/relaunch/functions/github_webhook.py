"""HTTP function: GitHub webhook deliveries."""

from __future__ import annotations

import flask
import functions_framework

from relaunch import bootstrap
from relaunch.functions.responses import error_response, reply_response
from relaunch.triggers.errors import PayloadTooLarge, TriggerError
from relaunch.triggers.github import parse_github


@functions_framework.http
def github_webhook(request: flask.Request) -> tuple[str, int, dict[str, str]]:
    """Verify, validate, dedupe, persist, publish; answer fast."""
    app = bootstrap.app()
    if (request.content_length or 0) > app.settings.max_body_bytes:  # refuse before reading it into memory
        return error_response(PayloadTooLarge(f"body over {app.settings.max_body_bytes} bytes"))
    body = request.get_data(cache=False)
    headers = dict(request.headers)
    try:
        event = parse_github(headers, body, secret=app.settings.webhook_secret(), max_body=app.settings.max_body_bytes)
    except TriggerError as exc:
        return error_response(exc)
    return reply_response(app.ingest.github(event, headers, body))
