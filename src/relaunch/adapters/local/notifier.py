"""Embedded-mode notifier: records on the run's timeline exactly what would be sent to GitHub."""

from __future__ import annotations

import logging

from relaunch.domain.model import Notification, TimelineEntry
from relaunch.domain.ports import RunStore
from relaunch.domain.reporting import check_run, commit_status, deployment, deployment_entry, deployment_status

log = logging.getLogger(__name__)


class TimelineNotifier:
    """Writes each commit status, the gate's check run and each deployment status as timeline entries."""

    def __init__(self, store: RunStore, *, deployments: bool = True) -> None:
        """`deployments` False: another notifier (GitHub's, which knows the deployment's id) records them."""
        self._store = store
        self._deployments = deployments

    def notify(self, notification: Notification) -> None:
        """Record the status, the check run when there is a report, and the deployment status of a rollout."""
        status = commit_status(notification)
        entry = TimelineEntry(
            kind="github.status",
            message=f"{status['context']} {status['state']}: {status['description']}",
            data={**status, "repo": notification.repo, "sha": notification.sha},
        )
        self._store.append_timeline(notification.run_id, entry)
        check = check_run(notification)
        if check is not None:
            summary = TimelineEntry(
                kind="github.check_run",
                message=f"check run {check['name']}: {check['conclusion']}",
                data={**check, "repo": notification.repo},
            )
            self._store.append_timeline(notification.run_id, summary)
        if self._deployments and deployment(notification) is not None:
            self._record_deployment(notification)

    def _record_deployment(self, n: Notification) -> None:
        """The deployment status GitHub would get; its state follows the run's last one (see deployment_state)."""
        earlier = [e for e in self._store.timeline(n.run_id) if e.kind == "deployment"]
        previous = str(earlier[-1].data.get("status")) if earlier else None
        self._store.append_timeline(n.run_id, deployment_entry(n, deployment_status(n, previous=previous), None))
