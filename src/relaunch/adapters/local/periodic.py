"""A daemon thread that calls one function every interval until stopped; a failed call is logged and tried again."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    """Calls `action` every `interval_s` seconds on its own thread, between `start()` and `stop()`."""

    def __init__(self, action: Callable[[], None], interval_s: float, *, name: str, failure: str) -> None:
        self._action, self._interval_s, self._failure = action, interval_s, failure
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stopped.wait(self._interval_s):
            try:
                self._action()
            except Exception:  # the next round tries again
                log.exception(self._failure)
