"""The dashboard's one script in headless Chromium (tests/browser.py), against a tiny loopback server: each `update`
event replaces its element's content, except while someone types in a field of it; that update lands on blur."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from relaunch.dashboard.assets import JS
from tests.browser import chromium_page

PAGE = b"""<!doctype html><html><body>
<section id="run" data-live="/live"><p id="v">version 0</p><input name="reason"></section>
<button id="elsewhere">elsewhere</button><script src="/dashboard.js"></script></body></html>"""


class Updates:
    """The next `update` events the stream sends, handed over by the test one at a time."""

    def __init__(self) -> None:
        self.queue: list[str] = []
        self.ready = threading.Condition()

    def send(self, html: str) -> None:
        with self.ready:
            self.queue.append(html)
            self.ready.notify_all()

    def next(self, timeout: float) -> str | None:
        with self.ready:
            self.ready.wait_for(lambda: bool(self.queue), timeout)
            return self.queue.pop(0) if self.queue else None


@pytest.fixture
def server() -> Iterator[tuple[str, Updates]]:
    updates = Updates()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            kinds = {"/": ("text/html", PAGE), "/dashboard.js": ("text/javascript", JS.encode())}
            if self.path in kinds:
                kind, body = kinds[self.path]
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if self.path != "/live":  # the browser's own requests (a favicon) must not take an update
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            html = updates.next(timeout=20)
            while html is not None:
                self.wfile.write(f"event: update\ndata: {json.dumps({'html': html})}\n\n".encode())
                self.wfile.flush()
                html = updates.next(timeout=20)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", updates
    finally:
        updates.send("")  # the stream's last event: nothing waits on it any more
        httpd.shutdown()
        httpd.server_close()


def section(version: int) -> str:
    return f'<p id="v">version {version}</p><input name="reason">'


def test_an_update_waits_while_a_field_of_its_section_is_typed_in(server: tuple[str, Updates]) -> None:
    url, updates = server
    with chromium_page() as page:
        page.set_default_timeout(10_000)
        page.goto(url + "/")
        updates.send(section(1))
        page.wait_for_selector("#v:text('version 1')")  # an update replaces the section's content

        page.fill("input[name=reason]", "the canary looked wrong")  # focus stays in the field
        updates.send(section(2))
        page.wait_for_timeout(500)  # the event has arrived by now (the first one took far less)
        assert page.inner_text("#v") == "version 1"
        assert page.input_value("input[name=reason]") == "the canary looked wrong"

        page.click("#elsewhere")  # the field loses focus: the waiting update lands
        page.wait_for_selector("#v:text('version 2')")
