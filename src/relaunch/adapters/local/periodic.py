"""A daemon thread that calls one function every interval until stopped; a failed call is logged and tried again."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from relaunch.adapters.local import wake

log = logging.getLogger(__name__)


class Periodic:
    """Calls `action` every `interval_s` seconds on its own thread, between `start()` and `stop()`.

    With `wake_path`, it binds a datagram socket there and a byte sent to it (`wake.nudge`) runs `action` at once;
    the interval stays as the safety net, and the plain interval is all there is when the socket cannot be bound.
    """

    def __init__(
        self,
        action: Callable[[], None],
        interval_s: float,
        *,
        name: str,
        failure: str,
        wake_path: Path | None = None,
    ) -> None:
        self._action, self._interval_s, self._failure = action, interval_s, failure
        self._wake_path = wake_path
        self._wakes: wake.WakeSocket | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        if self._wake_path is not None:
            self._wakes = wake.WakeSocket.bind(self._wake_path)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._wakes is not None:
            wake.nudge(self._wakes.path)
        self._thread.join(timeout=5)
        if self._wakes is not None and not self._thread.is_alive():
            self._wakes.close()

    def _loop(self) -> None:
        while not self._pause():
            try:
                self._action()
            except Exception:  # the next round tries again
                log.exception(self._failure)

    def _pause(self) -> bool:
        """Wait for a nudge or the interval; True once stopped."""
        if self._wakes is None:
            return self._stopped.wait(self._interval_s)
        wake.wait([self._wakes.fileno()], self._interval_s, self._stopped.wait)
        self._wakes.drain()
        return self._stopped.is_set()
