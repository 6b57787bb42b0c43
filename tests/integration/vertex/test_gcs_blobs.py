"""GcsBlobStore with the real google-cloud-storage client against a tiny Cloud Storage JSON API on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from relaunch.adapters.gcp.gcs_blobs import GcsBlobStore
from relaunch.domain.ports import TransientError
from tests.gcs_server import FakeGcs, gcs_server

METRICS = {"candidate": {"accuracy": 0.97, "macro_f1": 0.97}, "champion": None}


@pytest.fixture
def gcs() -> Iterator[FakeGcs]:
    with gcs_server() as fake:
        yield fake


@pytest.fixture
def blobs(gcs: FakeGcs) -> GcsBlobStore:
    from google.auth.credentials import AnonymousCredentials

    return GcsBlobStore(api_endpoint=gcs.url, credentials=AnonymousCredentials())


def test_read_text_downloads_the_object(gcs: FakeGcs, blobs: GcsBlobStore) -> None:
    name = "root/runs/digits-1a2b3c4d5e/evaluation/metrics.json"
    gcs.objects[("relaunch-artifacts", name)] = json.dumps(METRICS).encode()
    uri = blobs.join("gs://relaunch-artifacts/root/", "runs", "digits-1a2b3c4d5e", "evaluation", "metrics.json")

    assert uri == f"gs://relaunch-artifacts/{name}"
    assert json.loads(blobs.read_text(uri)) == METRICS
    assert gcs.paths == [
        "/download/storage/v1/b/relaunch-artifacts/o/root%2Fruns%2Fdigits-1a2b3c4d5e%2Fevaluation%2Fmetrics.json"
        "?alt=media"
    ]


def test_a_missing_object_is_file_not_found(blobs: GcsBlobStore) -> None:
    with pytest.raises(FileNotFoundError, match="gs://relaunch-artifacts/nothing.json"):
        blobs.read_text("gs://relaunch-artifacts/nothing.json")


@pytest.mark.parametrize("code", [429, 503])
def test_an_unavailable_store_is_transient(gcs: FakeGcs, blobs: GcsBlobStore, code: int) -> None:
    gcs.objects[("b", "x.json")] = b"{}"
    gcs.statuses.append(code)
    with pytest.raises(TransientError, match=str(code)):
        blobs.read_text("gs://b/x.json")
    assert blobs.read_text("gs://b/x.json") == "{}"  # no client-side retry: the second call is the redelivery
    assert len(gcs.paths) == 2


def test_an_unreachable_store_is_transient_not_a_missing_file() -> None:
    from google.auth.credentials import AnonymousCredentials

    from relaunch.adapters.local.stack import free_port

    blobs = GcsBlobStore(api_endpoint=f"http://127.0.0.1:{free_port()}", credentials=AnonymousCredentials())
    with pytest.raises(TransientError):
        blobs.read_text("gs://b/x.json")


@pytest.mark.parametrize("uri", ["/tmp/metrics.json", "gs://", "gs://bucket-only", "s3://b/x"])
def test_anything_but_a_gs_object_is_refused(blobs: GcsBlobStore, uri: str) -> None:
    with pytest.raises(ValueError, match="uri"):
        blobs.read_text(uri)


def test_join() -> None:
    blobs = GcsBlobStore()
    assert blobs.join("gs://b", "runs/", "/r1", "model") == "gs://b/runs/r1/model"
    with pytest.raises(ValueError, match="base"):
        blobs.join("/local/root", "runs")
