"""Mapping service replies and typed trigger errors to HTTP responses (never a stack trace)."""

from __future__ import annotations

import json

import flask

from relaunch.pipelines.ingest import Reply
from relaunch.triggers.errors import PayloadTooLarge, TriggerError

JSON = {"Content-Type": "application/json"}
Response = tuple[str, int, dict[str, str]]


def reply_response(reply: Reply) -> Response:
    """A service reply as a Flask response tuple."""
    return json.dumps(reply.body, sort_keys=True), reply.status, JSON


def error_response(error: TriggerError) -> Response:
    """A typed trigger error as its 4xx response."""
    return json.dumps(error.to_body(), sort_keys=True), error.status, JSON


def too_large(request: flask.Request, limit: int) -> Response | None:
    """A 413 when the declared body is over `limit`, decided before the body is read."""
    if (request.content_length or 0) > limit:
        return error_response(PayloadTooLarge(f"body over {limit} bytes", field="body"))
    return None
