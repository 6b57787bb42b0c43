"""GcsBlobStore with the real google-cloud-storage client against a tiny Cloud Storage JSON API on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import pytest

from relaunch.adapters.gcp.gcs_blobs import GcsBlobStore
from relaunch.ports import TransientError

METRICS = {"candidate": {"accuracy": 0.97, "macro_f1": 0.97}, "champion": None}


@dataclass
class FakeGcs:
    """Objects by (bucket, name); the media download route of the JSON API, errors as Google JSON errors.

    google-cloud-storage 3.17 also GETs each bucket's metadata from a background thread (for its telemetry spans);
    those requests are answered apart, so they neither take a scripted error nor show among `paths`.
    """

    url: str = ""
    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    bucket_lookups: list[str] = field(default_factory=list)

    def answer(self, raw_path: str) -> tuple[int, bytes]:
        bucket = urlsplit(raw_path).path.removeprefix("/storage/v1/b/")
        if raw_path.startswith("/storage/v1/b/") and "/" not in bucket:
            self.bucket_lookups.append(bucket)
            return 200, json.dumps({"kind": "storage#bucket", "name": bucket, "location": "US-CENTRAL1"}).encode()
        self.paths.append(raw_path)
        if self.statuses:
            code = self.statuses.pop(0)
            return code, _error(code, "Backend Error")
        split = urlsplit(raw_path)
        prefix = "/download/storage/v1/b/"
        bucket, _, name = split.path.removeprefix(prefix).partition("/o/")
        if not split.path.startswith(prefix) or split.query != "alt=media":
            return 400, _error(400, f"unsupported request {raw_path}")
        data = self.objects.get((bucket, unquote(name)))
        return (200, data) if data is not None else (404, _error(404, "No such object: " + unquote(name)))


def _error(code: int, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "errors": [{"message": message}]}}).encode()


@pytest.fixture
def gcs() -> Iterator[FakeGcs]:
    fake = FakeGcs()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            code, data = fake.answer(self.path)
            self.send_response(code)
            self.send_header("Content-Type", "application/json" if code != 200 else "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(2)


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
