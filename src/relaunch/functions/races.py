"""Lost races and passing outages in any function: expected outcomes, answered quietly with a retryable status.

A `ConflictError` means another writer moved the run first; handling the message again reads the newer version, so a
few tries within the request settle most races. A race still lost, or a `TransientError`, is answered 503 with
Retry-After: the local bus and Pub/Sub redeliver any non-2xx, and a webhook's sender sees a status worth retrying
(GitHub's "Redeliver" button, W&B's retries). A Pub/Sub function lets it propagate as a werkzeug HTTPException, which
Flask answers without logging an ERROR and a traceback; the webhooks answer it as JSON (responses.retry_response)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from werkzeug.exceptions import ServiceUnavailable

from relaunch.domain.ports import ConflictError, TransientError

log = logging.getLogger(__name__)

T = TypeVar("T")

CONFLICT_ATTEMPTS = 3
RETRY_AFTER_S = 5


class Redeliver(ServiceUnavailable):
    """503 with Retry-After: not handled now, deliver it again."""

    def __init__(self, reason: str) -> None:
        super().__init__(description=f"not handled now ({reason}); deliver again", retry_after=RETRY_AFTER_S)


def settle(what: str, act: Callable[[], T]) -> T:
    """Run `act`, again on a lost race (a bounded number of times); Redeliver when it cannot finish now."""
    lost: ConflictError | None = None
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            return act()
        except ConflictError as exc:
            lost = exc
            log.info("%s: lost a race (try %d of %d): %s", what, attempt, CONFLICT_ATTEMPTS, exc)
        except TransientError as exc:  # not retried here: the sender's backoff gives the dependency time
            log.warning("%s: %s; asking for redelivery", what, exc)
            raise Redeliver("a dependency is unavailable") from None
    log.warning("%s: lost the race %d times; asking for redelivery: %s", what, CONFLICT_ATTEMPTS, lost)
    raise Redeliver("lost a concurrent update")
