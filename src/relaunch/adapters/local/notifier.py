"""Embedded-mode notifier: records on the run's timeline exactly what would be sent to GitHub."""

from __future__ import annotations

import logging

from relaunch.domain.model import Notification, TimelineEntry
from relaunch.domain.ports import RunStore
from relaunch.domain.reporting import check_run, commit_status

log = logging.getLogger(__name__)


class TimelineNotifier:
    """Writes each commit status (and the gate's check run) as timeline entries instead of calling GitHub."""

    def __init__(self, store: RunStore) -> None:
        self._store = store

    def notify(self, notification: Notification) -> None:
        """Record the status and, when there is a report, the check run."""
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
