"""Group commit: concurrent writers of one process share a transaction instead of queueing for one each.

The first writer to arrive commits everything queued up to then (its own work and whatever other threads handed in
while the previous transaction ran) in one BEGIN … COMMIT, and every caller returns only once its work is committed,
so durability before a webhook's 2xx is unchanged. Under 16 concurrent webhooks this turns ~8 statements and a WAL
commit per request into a few statements per request and one commit per batch, and the waiting threads sleep on a
lock of their own instead of bouncing the GIL through SQLite calls.

One bad item must not fail its neighbours: when a batch raises, it is rolled back and each item is applied again in
a transaction of its own, so only the item at fault gets the error.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from relaunch.adapters.local.sqlite import write_transaction

T = TypeVar("T")
R = TypeVar("R")
_PENDING = object()


class _Ticket(Generic[T, R]):
    __slots__ = ("item", "result", "error", "_wake")

    def __init__(self, item: T) -> None:
        self.item = item
        self.result: R | object = _PENDING
        self.error: BaseException | None = None
        self._wake = threading.Lock()  # held until someone wakes this ticket's thread: with its result, or to lead
        self._wake.acquire()

    @property
    def done(self) -> bool:
        return self.result is not _PENDING or self.error is not None

    def wait(self) -> None:
        self._wake.acquire()

    def wake(self) -> None:
        self._wake.release()


class GroupCommit(Generic[T, R]):
    """Applies items with `apply(conn, items) -> results` (one result per item, in order) in shared transactions.

    Each waiting thread is woken exactly once: with its result, or to commit the queue itself (the leader hands over
    to the oldest waiter), never to find the batch was not its own and sleep again, as a shared condition's
    notify_all would have every waiter do, each wake-up a contended trip through the GIL.
    """

    def __init__(
        self, writer: Callable[[], sqlite3.Connection], apply: Callable[[sqlite3.Connection, Sequence[T]], list[R]]
    ) -> None:
        self._writer = writer
        self._apply = apply
        self._lock = threading.Lock()
        self._queue: list[_Ticket[T, R]] = []
        self._committing = False

    def submit(self, item: T) -> R:
        """Apply `item` in the next transaction and return its result once that transaction has committed."""
        ticket: _Ticket[T, R] = _Ticket(item)
        with self._lock:
            self._queue.append(ticket)
            lead = not self._committing
            self._committing = True
        if not lead:
            ticket.wait()  # until its batch committed, or until the leader hands the queue over to it
        if not ticket.done:
            self._lead()
        if ticket.error is not None:
            raise ticket.error
        return ticket.result  # type: ignore[return-value]

    def _lead(self) -> None:
        """Commit the queue (the leader's own ticket first in it), wake its tickets, hand over to the next waiter."""
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            self._commit(batch)
        except BaseException as exc:  # interrupted: nobody in the batch may wait for a result that never comes
            for waiting in batch:
                waiting.error = waiting.error or exc
            raise
        finally:
            for waiting in batch[1:]:
                waiting.wake()
            with self._lock:
                following = self._queue[0] if self._queue else None
                self._committing = following is not None
            if following is not None:
                following.wake()

    def _commit(self, batch: list[_Ticket[T, R]]) -> None:
        try:
            with write_transaction(self._writer()) as conn:
                results = self._apply(conn, [t.item for t in batch])
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
            else:
                for ticket in batch:  # rolled back: each on its own, so only the culprit fails
                    self._commit([ticket])
            return
        for ticket, result in zip(batch, results, strict=True):
            ticket.result = result
