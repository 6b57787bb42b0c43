"""A Slack incoming webhook stand-in: records posts, answers "ok" or a scripted error, can stall (for timeouts)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from relaunch.emulated.loopback import loopback_server

HOOK_PATH = "/services/T0RELAUNCH/B0RELAUNCH/x8Qm2ZkS4fNw7pL1cV9tR3yH"  # the secret part of a webhook URL


@dataclass
class FakeSlack:
    """Posts received, answers to give (status, plain-text body) before "200 ok", and a stall for timeouts."""

    url: str = ""
    posts: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    answers: list[tuple[int, str]] = field(default_factory=list)
    stall: bool = False
    released: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, path: str, body: bytes) -> tuple[int, str]:
        with self.lock:
            self.paths.append(path)
            self.posts.append(json.loads(body))
            answer = self.answers.pop(0) if self.answers else (200, "ok")
        if self.stall:
            self.released.wait(10)
        return answer


def handler(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status, text = fake.handle(self.path, body)
            out = text.encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)
            except OSError:  # the client gave up (timeout test)
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serve_slack() -> Iterator[FakeSlack]:
    """A FakeSlack on a free loopback port; `.url` is the full webhook URL (its path is the secret part)."""
    fake = FakeSlack()
    with loopback_server(handler(fake)) as url:
        fake.url = f"{url}{HOOK_PATH}"
        try:
            yield fake
        finally:
            fake.released.set()
