"""Sends each notification to several notifiers (GitHub, Slack, the timeline); one failing never stops the others."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from relaunch.domain.model import Notification
from relaunch.domain.ports import Notifier

log = logging.getLogger(__name__)


class FanoutNotifier:
    """A Notifier that forwards to every notifier in order, logging and swallowing each one's failure."""

    def __init__(self, notifiers: Sequence[Notifier]) -> None:
        self._notifiers = tuple(notifiers)

    def __repr__(self) -> str:
        return f"FanoutNotifier({', '.join(type(n).__name__ for n in self._notifiers)})"

    def notify(self, notification: Notification) -> None:
        """Notify each in turn."""
        for notifier in self._notifiers:
            try:
                notifier.notify(notification)
            except Exception as exc:  # a notification never blocks a run, nor the other notifiers
                # The type only: an SDK's message can carry a URL or header that is a credential.
                log.warning(
                    "%s failed on run %s (%s %s): %s",
                    type(notifier).__name__,
                    notification.run_id,
                    notification.stage,
                    notification.state,
                    type(exc).__name__,
                )
