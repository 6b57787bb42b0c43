"""Integration helpers: a real HTTP subscriber on loopback that records pushes and answers as it is told."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Received:
    """One request as the subscriber saw it."""

    at: float
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Subscriber:
    """A push endpoint: records every request; answers with the next scripted status (then `default_status`)."""

    url: str
    statuses: list[int] = field(default_factory=list)
    default_status: int = 204
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    active: int = 0
    max_active: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, request: Received) -> int:
        with self.lock:
            self.received.append(request)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            status = self.statuses.pop(0) if self.statuses else self.default_status
        time.sleep(self.delay)
        with self.lock:
            self.active -= 1
        return status

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """Poll until at least `count` requests arrived (fail after `timeout`)."""
        wait_until(lambda: len(self.received) >= count, timeout, f"{count} requests, got {len(self.received)}")
        return list(self.received)


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll `condition` every 10 ms; fail the test if it is still false after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def _handler(subscriber: Subscriber) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            request = Received(time.monotonic(), self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            status = subscriber.handle(request)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    """A recording push endpoint on a free loopback port."""
    sub = Subscriber(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(sub))
    server.daemon_threads = True
    sub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield sub
    server.shutdown()
    server.server_close()
    thread.join(2)
