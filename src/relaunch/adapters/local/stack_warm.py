"""The embedded stack's warm-up: once a function listens, one request makes it build what its first delivery would
(functions/warm_up.py answers it), so the first push after `relaunch up` reports ready is served warm.

The requests run in threads while the stack starts its other pieces; the stack waits for them before it reports
ready. A warm-up that fails is logged and costs nothing else: that function's first delivery builds what it needs.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from urllib.parse import urlsplit

from relaunch.handoff import WARM_UP_PATH_VARIABLE

log = logging.getLogger(__name__)

PATH = "/_relaunch/warm-up"
VARIABLE = WARM_UP_PATH_VARIABLE  # in the functions' environment: where they answer the warm-up (and that they do)


class WarmUps:
    """Warm-up requests in flight, one per function; `wait` for them all."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []

    def send(self, name: str, url: str, timeout: float) -> None:
        """Ask the function `name` listening at `url` to warm up, from a thread."""
        thread = threading.Thread(target=_warm, args=(name, url, timeout), name=f"relaunch-warm-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def wait(self, timeout: float) -> None:
        """Until every warm-up answered, or `timeout` seconds in all."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]


def _warm(name: str, url: str, timeout: float) -> None:
    where = urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=timeout)
    try:  # http.client, not urllib: a proxy from the environment must never see loopback traffic
        connection.request("GET", PATH)
        reply = connection.getresponse()
        reply.read()
        if reply.status != 200:
            log.warning("%s: warm-up answered %d; its first delivery builds what it needs", name, reply.status)
    except (OSError, http.client.HTTPException) as exc:
        log.warning("%s: warm-up failed (%s); its first delivery builds what it needs", name, type(exc).__name__)
    finally:
        connection.close()
