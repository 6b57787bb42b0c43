"""A function process's log: its lines set up once per app, each request's context (its trace) started fresh."""

from __future__ import annotations

import os

import flask

from relaunch import bootstrap, logs
from relaunch.settings import Settings, secret_values
from relaunch.triggers.trace import trace_context


def install_logging(app: flask.Flask) -> None:
    """JSON lines for Cloud Logging on the gcp profile, readable lines elsewhere; every request of `app` starts
    with a fresh log context carrying its trace (a server's threads serve one request after another)."""
    app.before_request(_begin)
    try:
        settings: Settings | None = bootstrap.app().settings
    except Exception:  # noqa: BLE001 (the webhook guard refuses deliveries and logs why, in the lines chosen here)
        settings = None
    if settings is None:  # K_SERVICE: Cloud Run runs this process; its error is one entry, traceback included
        logs.configure(structured="K_SERVICE" in os.environ)
        return
    secrets = secret_values(settings).values()
    logs.configure(structured=settings.profile == "gcp", project=settings.gcp_project, secrets=secrets)


def _begin() -> None:
    logs.begin(trace_context(dict(flask.request.headers.items())))
