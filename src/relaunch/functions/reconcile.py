"""CloudEvent function: a scheduler tick on `relaunch-reconcile` reconciles every active run."""

from __future__ import annotations

import logging

import functions_framework
from cloudevents.http import CloudEvent

from relaunch import bootstrap
from relaunch.housekeeping import on_reconcile
from relaunch.service.reconcile import ReconcileService

log = logging.getLogger(__name__)


@functions_framework.cloud_event
def reconcile(cloud_event: CloudEvent) -> None:
    """Any tick will do (its content is ignored): reconciling twice changes nothing, so redeliveries are harmless."""
    app = bootstrap.app()
    orchestrator = lambda: app.orchestrator  # noqa: E731 (built only once a tick finds a run to move)
    report = ReconcileService(app.specs, app.store, orchestrator, housekeeping=on_reconcile(app)).run()
    log.info(
        "reconcile %r: %d runs, advanced %s, timed out %s, errors %s",
        cloud_event["id"],
        report.examined,
        report.advanced,
        report.timed_out,
        report.errors,
    )
