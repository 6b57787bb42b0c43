"""Embedded-mode notifier: records on the run's timeline exactly what would be sent to GitHub."""

from __future__ import annotations

import logging

from relaunch.domain.model import Notification, TimelineEntry
from relaunch.domain.ports import RunStore
from relaunch.domain.pr_report import comment_body
from relaunch.domain.reporting import (
    check_run,
    commit_status,
    deployment,
    deployment_entry,
    deployment_status,
    run_url,
)

log = logging.getLogger(__name__)


class TimelineNotifier:
    """Writes each commit status, the gate's check run, a pull request's report comment and each deployment status
    as timeline entries."""

    def __init__(self, store: RunStore, *, deployments: bool = True, public_url: str | None = None) -> None:
        """`deployments` False: another notifier (GitHub's, which knows the deployment's id) records them.
        `public_url`: where runs can be seen, linked from the report comment as GitHub's notifier links it."""
        self._store = store
        self._deployments = deployments
        self._public_url = public_url

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
        self._record_pr_comment(notification)
        if self._deployments and deployment(notification) is not None:
            self._record_deployment(notification)

    def _record_pr_comment(self, n: Notification) -> None:
        """The body of the one comment a pull request keeps (GitHub's notifier creates or edits it)."""
        body = comment_body(n, n.target_url or run_url(self._public_url, n.run_id))
        if body is None:
            return
        verdict = "passed" if n.decision is not None and n.decision.promote else "failed"
        message = f"pull request #{n.pr_number} report comment (gate {verdict})"
        data = {"repo": n.repo, "issue_number": n.pr_number, "body": body}
        self._store.append_timeline(n.run_id, TimelineEntry(kind="github.pr_comment", message=message, data=data))

    def _record_deployment(self, n: Notification) -> None:
        """The deployment status GitHub would get; its state follows the run's last one (see deployment_state)."""
        earlier = [e for e in self._store.timeline(n.run_id) if e.kind == "deployment"]
        previous = str(earlier[-1].data.get("status")) if earlier else None
        self._store.append_timeline(n.run_id, deployment_entry(n, deployment_status(n, previous=previous), None))
