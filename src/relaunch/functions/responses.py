"""Mapping service replies and typed trigger errors to HTTP responses (never a stack trace)."""

from __future__ import annotations

import json

from relaunch.pipelines.ingest import Reply
from relaunch.triggers.errors import TriggerError

JSON = {"Content-Type": "application/json"}


def reply_response(reply: Reply) -> tuple[str, int, dict[str, str]]:
    """A service reply as a Flask response tuple."""
    return json.dumps(reply.body, sort_keys=True), reply.status, JSON


def error_response(error: TriggerError) -> tuple[str, int, dict[str, str]]:
    """A typed trigger error as its 4xx response."""
    return json.dumps(error.to_body(), sort_keys=True), error.status, JSON
