"""A git smart-HTTP server on loopback (`git http-backend` behind http.server), optionally behind an auth check.

`serve(root, authorized)` serves the repositories under `root` at http://127.0.0.1:PORT/<name>; with `authorized`,
a request whose Authorization header it refuses gets 401, as a private repository on GitHub does.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

from tests.loopback import loopback_server


@dataclass
class GitServer:
    url: str = ""
    authorizations: list[str] = field(default_factory=list)  # the Authorization header of every request ("" if none)


def _handler(server: GitServer, root: Path, authorized: Callable[[str], bool] | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            header = self.headers.get("Authorization", "")
            server.authorizations.append(header)
            if authorized is not None and not authorized(header):
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="GitHub"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            parts = urlsplit(self.path)
            env = {"PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": str(root), "GIT_HTTP_EXPORT_ALL": "1"}
            env |= {"PATH_INFO": parts.path, "QUERY_STRING": parts.query, "REQUEST_METHOD": self.command}
            env |= {"CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body))}
            env |= {"HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""), "REMOTE_ADDR": "127.0.0.1"}
            env |= {"GIT_PROTOCOL": self.headers.get("Git-Protocol", "")}
            done = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60)
            head, _, payload = done.stdout.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            fields = [line.split(":", 1) for line in lines if ":" in line]
            status = next((int(v.split()[0]) for k, v in fields if k.lower() == "status"), 200)
            self.send_response(status)
            for name, value in fields:
                if name.lower() != "status":
                    self.send_header(name, value.strip())
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _serve  # noqa: N815 (http.server's naming)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serve(root: Path, authorized: Callable[[str], bool] | None = None) -> Iterator[GitServer]:
    """Serve the repositories under `root` for the duration of the block."""
    server = GitServer()
    with loopback_server(_handler(server, root, authorized)) as url:
        server.url = url
        yield server
