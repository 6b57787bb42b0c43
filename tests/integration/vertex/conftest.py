"""Fixtures of the Vertex AI boundary tests: the fake Vertex REST API on loopback and adapters pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relaunch.emulated.vertex import FakeVertex, VertexServer

ROOT = Path(__file__).resolve().parents[3]
PROJECT = "p"
REGION = "us-central1"
PARENT_PATH = f"/v1/projects/{PROJECT}/locations/{REGION}"


@pytest.fixture
def vertex() -> Iterator[FakeVertex]:
    """A fake Vertex AI API whose operations are done after two polls."""
    with VertexServer(FakeVertex(operation_polls=2)) as fake:
        yield fake


@pytest.fixture
def client_kwargs(vertex: FakeVertex) -> dict[str, Any]:
    """What every adapter gets in tests: the local API host and anonymous credentials (no traffic leaves loopback)."""
    from google.auth.credentials import AnonymousCredentials

    return {"api_endpoint": vertex.url, "credentials": AnonymousCredentials()}


def bodies(fake: FakeVertex, method: str, path: str) -> list[Any]:
    """JSON bodies of the requests sent with exactly this method and path."""
    return [r.body for r in fake.requests if r.method == method and r.path == path]


def query(fake: FakeVertex, method: str, path: str) -> list[dict[str, list[str]]]:
    """Query parameters (without the transport's `$alt`) of the requests with this method and path."""
    return [
        {k: v for k, v in r.query.items() if k != "$alt"} for r in fake.requests if (r.method, r.path) == (method, path)
    ]
