"""A local stand-in for the W&B API: GraphQL at POST /graphql plus file downloads, with the state behind them.

It records every GraphQL operation (name and variables) and answers the minimal valid response for the operations
the wandb SDK sends for Launch queues, runs, sweeps and artifacts (wandb_queues.py, wandb_sweeps.py,
wandb_artifacts.py), and for `wandb sync` with its uploads (wandb_uploads.py). W&B publishes no GraphQL schema, so
what the installed SDK itself asks is the description requests are held to: an unknown operation gets a GraphQL
error, so does a query selecting a field no query of the installed wandb SDK selects (wandb_graphql.py reads them
from the SDK; wandb_sweeps.py records the one mutation the SDK assembles at run time), unless relaunch's W&B Launch
adapter names it in `BEYOND_SDK` (the README says why each is safe). Each such refusal is also kept in `refused`, so
a test can assert none happened.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from relaunch.adapters.wandb.launch import BEYOND_SDK
from relaunch.emulated import (
    wandb_queues,  # noqa: F401  (registers the queue and run operations)
    wandb_sweeps,  # registers the sweep operations
    wandb_uploads,  # registers what `wandb sync` sends; answers its uploads
)
from relaunch.emulated.loopback import loopback_server
from relaunch.emulated.wandb_artifacts import manifest
from relaunch.emulated.wandb_graphql import GraphQLSyntaxError, refused, sdk_paths
from relaunch.emulated.wandb_state import HANDLERS, Call, FakeArtifact, WandbState

__all__ = ["Call", "FakeArtifact", "FakeWandb", "basic_auth", "serve"]

_OPERATION = re.compile(r"\b(?:query|mutation)\s+(\w+)")


@dataclass
class FakeWandb(WandbState):
    """The W&B API of one entity: answers GraphQL and file downloads from its state."""

    def graphql(self, payload: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The HTTP status and body W&B answers to one POST /graphql."""
        query = payload.get("query", "")
        match = _OPERATION.search(query)
        operation = payload.get("operationName") or (match.group(1) if match else "")
        variables = payload.get("variables") or {}
        with self.lock:
            self.calls.append(Call(operation, query, variables, headers))
            if self.errors:
                status = self.errors.pop(0)
                return status, {"errors": [{"message": f"scripted HTTP {status}"}]}
            if self.api_key and headers.get("authorization") != basic_auth(self.api_key):
                return 401, {"errors": [{"message": "unauthorized"}]}
            handler = HANDLERS.get(operation)
            problems = unknown_fields(query)
            if handler is None and not problems:
                problems = [f"W&B stand-in does not know operation {operation!r}"]
            if problems:
                self.refused.extend(f"{operation or '(anonymous)'}: {p}" for p in problems)
                return 200, {"errors": [{"message": message} for message in problems]}
            assert handler is not None
            try:
                return 200, {"data": handler(self, variables)}
            except LookupError as exc:
                return 200, {"errors": [{"message": str(exc)}], "data": None}

    def download(self, path: str) -> tuple[int, bytes]:
        """A GET of a manifest's or a file's direct URL."""
        with self.lock:
            self.downloads.append(path)
            parts = path.strip("/").split("/", 2)
            for artifact in self.artifacts:
                if parts[:2] == ["manifests", artifact.id.rstrip("=")]:
                    return 200, json.dumps(manifest(artifact)).encode()
                if parts[:2] == ["files", artifact.id.rstrip("=")] and len(parts) == 3:
                    body = artifact.files.get(parts[2])
                    return (200, body) if body is not None else (404, b"")
        return 404, b""


def unknown_fields(query: str) -> list[str]:
    """W&B-style errors for each field of `query` no wandb SDK query selects (or for a document it cannot read)."""
    allowed = sdk_paths() | wandb_sweeps.built_paths() | {tuple(path.split(".")) for path in BEYOND_SDK}
    try:
        paths = refused(query, allowed)
    except GraphQLSyntaxError as exc:
        return [f"Syntax Error: {exc}"]
    return [f'Cannot query field "{p[-1]}" at {".".join(p[:-1])}: no wandb SDK query selects it' for p in paths]


def basic_auth(api_key: str) -> str:
    """The Authorization header the wandb SDK sends with `api_key` (HTTP basic, user `api`)."""
    return "Basic " + base64.b64encode(f"api:{api_key}".encode()).decode()


def _handler(fake: FakeWandb) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            if self.path.split("?")[0] != "/graphql":
                self._send(*wandb_uploads.receive(fake, "POST", self.path.split("?")[0], body))
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload = fake.graphql(json.loads(body or b"{}"), headers)
            self._send(status, json.dumps(payload).encode(), "application/json")

        def do_PUT(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            self._send(*wandb_uploads.receive(fake, "PUT", self.path.split("?")[0], body))

        def do_GET(self) -> None:  # noqa: N802
            status, body = fake.download(self.path.split("?")[0])
            self._send(status, body)

        def _send(self, status: int, body: bytes, content_type: str = "application/octet-stream") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serve(api_key: str = "") -> Iterator[FakeWandb]:
    """Run a FakeWandb on a free loopback port; with `api_key`, requests must carry it (HTTP basic, as W&B's)."""
    fake = FakeWandb(api_key=api_key)
    with loopback_server(_handler(fake)) as url:
        fake.url = url
        yield fake
