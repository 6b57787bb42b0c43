"""The Cloud Storage stand-in with the real google-cloud-storage client: its objects are files under a root folder.

A training job run locally uses that root as its /gcs/ mount, so what a job writes there is an object, and what a
client uploads is a file. What a client sends is checked against the storage v1 discovery document.
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relaunch.emulated.discovery_schema import document, problems
from relaunch.emulated.gcs import FakeGcs, GcsServer

BUCKET = "relaunch-artifacts"


@pytest.fixture
def gcs(tmp_path: Path) -> Iterator[FakeGcs]:
    with GcsServer(tmp_path / "gcs") as fake:
        yield fake


@pytest.fixture
def client(gcs: FakeGcs) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project="p", credentials=AnonymousCredentials(), client_options={"api_endpoint": gcs.url})


def test_a_file_written_under_the_root_is_an_object(gcs: FakeGcs, client: Any) -> None:
    model = gcs.root / BUCKET / "runs" / "r1" / "model" / "model.joblib"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"weights")  # as a job writes through its /gcs/ mount

    [blob] = client.list_blobs(BUCKET, prefix="runs/r1/model/")
    assert (blob.name, blob.size) == ("runs/r1/model/model.joblib", 7)
    assert client.bucket(BUCKET).blob("runs/r1/model/model.joblib").download_as_bytes() == b"weights"

    model.write_bytes(b"better weights")  # the job writes again: a new generation
    again = client.bucket(BUCKET).get_blob("runs/r1/model/model.joblib")
    assert again.generation > blob.generation and again.md5_hash != blob.md5_hash
    assert again.download_as_bytes(checksum="crc32c") == b"better weights"


def test_a_file_written_under_the_root_can_be_read_before_anything_lists_it(gcs: FakeGcs, client: Any) -> None:
    """A job writes its metrics through the mount and the orchestrator downloads them at once, listing nothing."""
    metrics = gcs.root / BUCKET / "runs" / "r2" / "evaluation" / "metrics.json"
    metrics.parent.mkdir(parents=True)
    metrics.write_bytes(b'{"accuracy": 0.97}')
    blob = client.bucket(BUCKET).blob("runs/r2/evaluation/metrics.json")
    assert blob.download_as_bytes() == b'{"accuracy": 0.97}'
    assert len(gcs.ops("download")) == 1  # answered the first time (a stand-in crash makes the client retry)
    assert client.bucket(BUCKET).get_blob("runs/r2/evaluation/metrics.json").content_type == "application/json"


def test_an_upload_is_a_file_and_outlives_the_server(gcs: FakeGcs, client: Any) -> None:
    blob = client.bucket(BUCKET).blob("evaluation/metrics.json")
    blob.metadata = {"run": "r1"}
    blob.upload_from_string('{"accuracy": 0.97}', content_type="application/json")

    assert (gcs.root / BUCKET / "evaluation" / "metrics.json").read_text() == '{"accuracy": 0.97}'
    with GcsServer(gcs.root) as restarted:  # the same root: the same object, the same generation
        again = restarted.resource(BUCKET, "evaluation/metrics.json")
    assert again["generation"] == str(blob.generation) and again["metadata"] == {"run": "r1"}
    assert again["contentType"] == "application/json"
    assert gcs.refused == []


def test_a_resumable_upload_and_a_delete(gcs: FakeGcs, client: Any) -> None:
    data = bytes(range(256)) * 2048  # 512 KiB, sent in two chunks
    blob = client.bucket(BUCKET).blob("big/model.joblib", chunk_size=256 * 1024)
    blob.upload_from_file(io.BytesIO(data))  # no size given: the client uploads resumably
    assert (gcs.root / BUCKET / "big" / "model.joblib").read_bytes() == data
    sizes = [r.query.get("upload_id") and len(r.body or b"") for r in gcs.ops("upload")]
    assert sizes == [None, 256 * 1024, 256 * 1024, 0]  # the session, two chunks, then the total size

    blob.delete()
    assert not (gcs.root / BUCKET / "big").exists()  # a folder lives only through its objects
    assert list(client.list_blobs(BUCKET)) == []


def test_an_unknown_metadata_field_is_a_400_naming_it(gcs: FakeGcs) -> None:
    boundary = "==0=="
    body = (
        f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
        + json.dumps({"name": "x.bin", "colour": "red", "metadata": {"n": 1}})
        + f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\nbytes\r\n--{boundary}--"
    ).encode()
    request = urllib.request.Request(
        f"{gcs.url}/upload/storage/v1/b/{BUCKET}/o?uploadType=multipart",
        data=body,
        headers={"Content-Type": f'multipart/related; boundary="{boundary}"'},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)

    error = json.loads(refused.value.read())["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert "Object.colour: not a field of Object" in error["message"]
    assert "Object.metadata.n: must be string" in error["message"]
    assert len(gcs.refused) == 2 and not (gcs.root / BUCKET / "x.bin").exists()


def test_a_patch_the_schema_refuses_is_a_bad_request(gcs: FakeGcs, client: Any) -> None:
    from google.api_core.exceptions import BadRequest

    blob = client.bucket(BUCKET).blob("a.txt")
    blob.upload_from_string("a")
    blob._patch_property("temporaryHold", "yes")  # the client sends whatever it is given
    with pytest.raises(BadRequest, match=r"Object\.temporaryHold: must be boolean"):
        blob.patch()

    blob = client.bucket(BUCKET).get_blob("a.txt")
    blob.metadata = {"stage": "gated"}
    blob.patch()
    assert client.bucket(BUCKET).get_blob("a.txt").metadata == {"stage": "gated"}
    assert blob.metageneration == 2


def test_a_name_no_file_can_have_is_still_an_object(gcs: FakeGcs, client: Any) -> None:
    gcs.put(BUCKET, "model/../escape.txt", b"x")
    gcs.put(BUCKET, "model/ok.txt", b"y")

    assert [b.name for b in client.list_blobs(BUCKET, prefix="model/")] == ["model/../escape.txt", "model/ok.txt"]
    assert not (gcs.root / BUCKET / "escape.txt").exists()
    assert gcs.objects[(BUCKET, "model/../escape.txt")] == b"x"


def test_what_the_stand_in_answers_conforms_to_the_discovery_document(gcs: FakeGcs, client: Any) -> None:
    gcs.put(BUCKET, "a/1.txt", b"1")
    gcs.put(BUCKET, "a/b/2.txt", b"2")
    gcs.put(BUCKET, "c.txt", b"3")
    listing = json.loads(urllib.request.urlopen(f"{gcs.url}/storage/v1/b/{BUCKET}/o?delimiter=/", timeout=10).read())

    assert [i["name"] for i in listing["items"]] == ["c.txt"] and listing["prefixes"] == ["a/"]
    assert problems(document("storage.v1.Object"), "Objects", listing) == []
    bucket = client.bucket(BUCKET)
    copied = bucket.copy_blob(bucket.blob("c.txt"), bucket, "d/c.txt")
    assert (gcs.root / BUCKET / "d" / "c.txt").read_bytes() == b"3" and copied.size == 1
    rewrite = urllib.request.Request(f"{gcs.url}/storage/v1/b/{BUCKET}/o/c.txt/rewriteTo/b/{BUCKET}/o/e.txt", b"{}")
    rewrite.add_header("Content-Type", "application/json")
    answer = json.loads(urllib.request.urlopen(rewrite, timeout=10).read())
    assert answer["done"] is True and problems(document("storage.v1.Object"), "RewriteResponse", answer) == []
