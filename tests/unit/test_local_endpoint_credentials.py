"""Anonymous credentials go only to a Google API stand-in on loopback; everything else keeps ADC (None)."""

from __future__ import annotations

import pytest
from google.auth.credentials import AnonymousCredentials

from relaunch.adapters.gcp.local_endpoint import credentials_for, is_loopback
from relaunch.adapters.gcp.vertex_training import VertexTrainingBackend


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:8080", "127.0.0.1:9", "http://localhost:1", "http://[::1]:80", "http://127.8.9.1"]
)
def test_a_loopback_endpoint_gets_anonymous_credentials(endpoint: str) -> None:
    assert is_loopback(endpoint) and isinstance(credentials_for(endpoint, None), AnonymousCredentials)


@pytest.mark.parametrize(
    "endpoint",
    [
        None,
        "",
        "us-central1-aiplatform.googleapis.com",
        "https://127.0.0.1:8443",  # TLS: a real proxy, perhaps; not what a stand-in serves
        "http://10.0.0.5:80",
        "http://127.0.0.1.evil.example:80",
        "http://localhost.example:80",
        "http://0.0.0.0:80",
    ],
)
def test_any_other_endpoint_keeps_application_default_credentials(endpoint: str | None) -> None:
    assert not is_loopback(endpoint) and credentials_for(endpoint, None) is None


def test_given_credentials_are_never_replaced() -> None:
    given = object()
    assert credentials_for("http://127.0.0.1:1", given) is given


def test_the_vertex_adapters_take_them() -> None:
    backend = VertexTrainingBackend("p", "us-central1", api_endpoint="http://127.0.0.1:9")
    assert isinstance(backend._credentials, AnonymousCredentials)
    assert VertexTrainingBackend("p", "us-central1")._credentials is None
