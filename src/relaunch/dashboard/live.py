"""Server-sent events: a page section re-rendered on the server and sent whenever it changed.

A stream looks at the store every `poll_s` (reads by primary key or a bounded listing, as `relaunch up` does twice
a second), sends the section's HTML when it differs from what it last sent, a comment line now and then so proxies
keep the connection, and ends after `duration_s`: the browser's EventSource reconnects by itself (after `retry`), so
no request holds a server thread forever and a stream that lost its client ends on its own.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)

POLL_S = 1.0
DURATION_S = 60.0
KEEPALIVE_S = 15.0
RETRY_MS = 1000


def stream(
    render: Callable[[], str],
    *,
    poll_s: float = POLL_S,
    duration_s: float = DURATION_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[str]:
    """SSE text: an `update` event with {"html": ...} at once and after each change, until `duration_s` passed."""
    yield f"retry: {RETRY_MS}\n\n"
    start = quiet_since = clock()
    last: str | None = None
    while True:
        try:
            html = render()
        except Exception as exc:  # the store went away mid-stream: say so once and end; the browser reconnects
            log.warning("live stream ended: %s", type(exc).__name__)
            yield f"event: problem\ndata: {json.dumps({'error': type(exc).__name__})}\n\n"
            return
        now = clock()
        if html != last:
            last, quiet_since = html, now
            yield f"event: update\ndata: {json.dumps({'html': html})}\n\n"
        elif now - quiet_since >= KEEPALIVE_S:
            quiet_since = now
            yield ": still here\n\n"
        if now - start >= duration_s:
            return
        sleep(poll_s)
