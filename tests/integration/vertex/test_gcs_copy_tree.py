"""GcsBlobStore.copy_tree with the real google-cloud-storage client against the fake JSON API on loopback.

Registration copies a run's model out of `runs/` (which training jobs may write) into `registry/` (which they may
only read); these tests hold the copy to: complete before it answers, once, exactly the listed generations.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import unquote

import pytest

from relaunch.adapters.gcp.gcs_blobs import GcsBlobStore
from relaunch.domain.ports import TransientError
from tests.gcs_server import FakeGcs, gcs_server

BUCKET = "relaunch-artifacts"
SRC = f"gs://{BUCKET}/root/runs/digits-1a2b/model"
DEST = f"gs://{BUCKET}/root/registry/digits/digits-1a2b/model"
FILES = {"model.joblib": b"weights", "assets/vocab.txt": b"a b c", "assets/labels.json": b"[0, 1]"}


@pytest.fixture
def gcs() -> Iterator[FakeGcs]:
    with gcs_server() as fake:
        for name, data in FILES.items():
            fake.put(BUCKET, f"root/runs/digits-1a2b/model/{name}", data)
        fake.put(BUCKET, "root/runs/digits-1a2b/model.other/not-mine.bin", b"a sibling folder sharing the prefix")
        yield fake


@pytest.fixture
def blobs(gcs: FakeGcs) -> GcsBlobStore:
    from google.auth.credentials import AnonymousCredentials

    return GcsBlobStore(api_endpoint=gcs.url, credentials=AnonymousCredentials())


def copied(gcs: FakeGcs) -> dict[str, bytes]:
    prefix = "root/registry/digits/digits-1a2b/model/"
    return {n.removeprefix(prefix): d for (b, n), d in gcs.objects.items() if b == BUCKET and n.startswith(prefix)}


def test_copy_tree_copies_every_object_of_the_folder_and_nothing_else(gcs: FakeGcs, blobs: GcsBlobStore) -> None:
    assert blobs.copy_tree(SRC, DEST) == DEST
    assert copied(gcs) == FILES
    rewrites = gcs.ops("rewrite")
    src_path = f"/storage/v1/b/{BUCKET}/o/root%2Fruns%2Fdigits-1a2b%2Fmodel%2Fmodel.joblib"
    dest_path = f"/b/{BUCKET}/o/root%2Fregistry%2Fdigits%2Fdigits-1a2b%2Fmodel%2Fmodel.joblib"
    assert any(r.path == f"{src_path}/rewriteTo{dest_path}" for r in rewrites)
    assert all("sourceGeneration" in r.query for r in rewrites)  # exactly the listed version, never a newer one
    assert any("rewriteToken" in r.query for r in rewrites)  # a rewrite not done in one call is continued
    listing = gcs.ops("list")[0].query
    assert listing["prefix"] == ["root/runs/digits-1a2b/model/"]
    manifest = json.loads(gcs.objects[(BUCKET, "root/registry/digits/digits-1a2b/model.manifest.json")])
    assert manifest["source"] == SRC and sorted(manifest["objects"]) == sorted(FILES)


def test_a_second_copy_copies_nothing_and_ignores_later_writes_to_the_source(gcs: FakeGcs, blobs: GcsBlobStore) -> None:
    blobs.copy_tree(SRC, DEST)
    before = len(gcs.requests)
    gcs.put(BUCKET, "root/runs/digits-1a2b/model/model.joblib", b"a later training job's weights")
    gcs.put(BUCKET, "root/runs/digits-1a2b/model/extra.pkl", b"planted")

    assert blobs.copy_tree(SRC, DEST) == DEST
    assert copied(gcs) == FILES
    assert [r.method for r in gcs.requests[before:]] == ["GET"]  # the manifest's lookup, nothing else


def test_a_copy_interrupted_half_way_is_not_complete_and_its_retry_finishes_it(
    gcs: FakeGcs, blobs: GcsBlobStore
) -> None:
    gcs.fail["rewrite"] = [None, None, 503]  # the first object is copied (two calls), then the service fails
    with pytest.raises(TransientError, match="503"):
        blobs.copy_tree(SRC, DEST)
    [done] = copied(gcs)
    assert (BUCKET, "root/registry/digits/digits-1a2b/model.manifest.json") not in gcs.objects

    first_copy = len(gcs.ops("rewrite"))
    assert blobs.copy_tree(SRC, DEST) == DEST
    assert copied(gcs) == FILES
    again = {unquote(r.path.rpartition("/o/")[2]) for r in gcs.ops("rewrite")[first_copy:]}
    assert again == {f"root/registry/digits/digits-1a2b/model/{n}" for n in FILES if n != done}  # nothing twice


@pytest.mark.parametrize("code", [429, 500, 503])
def test_an_unavailable_store_is_transient(gcs: FakeGcs, blobs: GcsBlobStore, code: int) -> None:
    gcs.fail["list"] = [code]
    with pytest.raises(TransientError, match=str(code)):
        blobs.copy_tree(SRC, DEST)
    assert len(gcs.ops("list")) == 1  # no client-side retry: the redelivery of the command retries
    assert blobs.copy_tree(SRC, DEST) == DEST
    assert copied(gcs) == FILES


@pytest.mark.parametrize("code", [400, 403])
def test_a_refusal_is_a_value_error(gcs: FakeGcs, blobs: GcsBlobStore, code: int) -> None:
    gcs.fail["rewrite"] = [code]
    with pytest.raises(ValueError, match=str(code)):
        blobs.copy_tree(SRC, DEST)


def test_an_empty_or_missing_model_folder_is_refused(blobs: GcsBlobStore) -> None:
    with pytest.raises(ValueError, match="no model files"):
        blobs.copy_tree(f"gs://{BUCKET}/root/runs/never-trained/model", DEST)


def test_a_source_object_gone_during_the_copy_is_refused(gcs: FakeGcs, blobs: GcsBlobStore) -> None:
    gcs.fail["rewrite"] = [404]
    with pytest.raises(ValueError, match="404"):
        blobs.copy_tree(SRC, DEST)


@pytest.mark.parametrize("name", ["../../registry/digits/v9/model.joblib", "a//b", "./x", "tab\there", "esc\x1b[2J"])
def test_object_names_a_model_file_cannot_have_are_refused(gcs: FakeGcs, blobs: GcsBlobStore, name: str) -> None:
    gcs.put(BUCKET, f"root/runs/digits-1a2b/model/{name}", b"x")
    with pytest.raises(ValueError, match="src: object"):
        blobs.copy_tree(SRC, DEST)
    assert copied(gcs) == {}


def test_an_unreachable_store_is_transient() -> None:
    from google.auth.credentials import AnonymousCredentials

    from relaunch.adapters.local.stack import free_port

    blobs = GcsBlobStore(api_endpoint=f"http://127.0.0.1:{free_port()}", credentials=AnonymousCredentials())
    with pytest.raises(TransientError):
        blobs.copy_tree(SRC, DEST)


@pytest.mark.parametrize(("src", "dest"), [("/tmp/model", DEST), (SRC, "gs://bucket-only"), (SRC, "s3://b/x")])
def test_anything_but_gs_folders_is_refused(blobs: GcsBlobStore, src: str, dest: str) -> None:
    with pytest.raises(ValueError, match="src|dest"):
        blobs.copy_tree(src, dest)
