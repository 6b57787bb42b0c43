"""HTTP function: the dashboard (runs, one run, pipelines, inbox; its buttons), from whatever store bootstrap gives.

On the embedded stack `relaunch up` serves it on loopback; on GCP it is deployed like the webhooks and reads Firestore.
"""

from __future__ import annotations

import logging

import flask
import functions_framework

from relaunch import bootstrap
from relaunch.functions.responses import unavailable

log = logging.getLogger(__name__)


@functions_framework.http
def dashboard(request: flask.Request) -> flask.Response | tuple[str, int, dict[str, str]]:
    """Route the request to the dashboard; an app that cannot be built answers 503 (see the function's log)."""
    from relaunch.dashboard.web import Dashboard  # noqa: PLC0415 (the module loads with its first request)

    try:
        app = bootstrap.app()
    except Exception as exc:  # settings that do not validate: the details (maybe a secret's value) go to the log only
        log.exception("dashboard: the app cannot be built")
        return unavailable(f"dashboard: not configured ({type(exc).__name__}, see the function's log)")
    return Dashboard(app).respond(request)
