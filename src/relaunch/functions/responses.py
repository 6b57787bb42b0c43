"""Mapping service replies and typed trigger errors to HTTP responses (never a stack trace)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import flask

from relaunch.functions.races import Redeliver
from relaunch.triggers.errors import PayloadTooLarge, TriggerError

if TYPE_CHECKING:
    from relaunch.service.ingest import Reply

JSON = {"Content-Type": "application/json"}
Response = tuple[str, int, dict[str, str]]


def reply_response(reply: Reply) -> Response:
    """A service reply as a Flask response tuple."""
    return json.dumps(reply.body, sort_keys=True), reply.status, JSON


def error_response(error: TriggerError) -> Response:
    """A typed trigger error as its 4xx response."""
    return json.dumps(error.to_body(), sort_keys=True), error.status, JSON


def retry_response(redeliver: Redeliver) -> Response:
    """A 503 with Retry-After for a delivery that cannot be kept now (a lost race, an outage): the sender retries."""
    headers = {**JSON, "Retry-After": str(redeliver.retry_after)}
    return json.dumps({"error": redeliver.description}, sort_keys=True), 503, headers


def unavailable(reason: str) -> Response:
    """A 503 for a function that serves nothing (fail closed): no secret, or an app that cannot be built."""
    return json.dumps({"error": reason}, sort_keys=True), 503, JSON


def too_large(request: flask.Request, limit: int) -> Response | None:
    """A 413 when the declared body is over `limit`, decided before the body is read."""
    if (request.content_length or 0) > limit:
        return error_response(PayloadTooLarge(f"body over {limit} bytes", field="body"))
    return None


def unreadable_body(exc: Exception) -> Response:
    """A 400 for a body the framework itself cannot decode (absurd nesting, a number Python will not parse)."""
    message = f"body is not a readable event ({type(exc).__name__})"  # not its text: that may quote the body
    return json.dumps({"error": message, "field": "body"}, sort_keys=True), 400, JSON


def install_error_handlers(app: flask.Flask) -> None:
    """Answer what functions-framework's own CloudEvent decoding raises with a 400, not a 500 and a traceback."""
    from cloudevents.exceptions import GenericException  # noqa: PLC0415 (HTTP-only processes need not load it)

    app.register_error_handler(GenericException, unreadable_body)
    app.register_error_handler(RecursionError, unreadable_body)
