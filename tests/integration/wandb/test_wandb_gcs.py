"""W&B runs in the gcp profile: the pinned artifact version lands in Cloud Storage, where the evaluation job reads it.

The real wandb SDK against relaunch.emulated.wandb, the real google-cloud-storage client against tests/gcs_server.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from relaunch import bootstrap
from relaunch.adapters.gcp.gcs_blobs import GcsBlobStore
from relaunch.adapters.wandb.artifacts import WandbArtifacts
from relaunch.domain.model import RunState
from relaunch.domain.ports import TransientError
from relaunch.settings import Settings
from tests.gcs_server import FakeGcs, gcs_server
from tests.integration.wandb.conftest import API_KEY
from tests.unit.test_orchestrator import World
from tests.wandb_server import FakeArtifact, FakeWandb

REF = "team/digits/digits-model"
BUCKET = "relaunch-artifacts"
ROOT_URI = f"gs://{BUCKET}/root"
DEST = f"{ROOT_URI}/runs/digits-1/model"
V3 = {"model.joblib": b"v3-weights", "meta/params.json": b'{"C": 1.0}'}


@pytest.fixture
def gcs() -> Iterator[FakeGcs]:
    with gcs_server() as fake:
        yield fake


@pytest.fixture
def blobs(gcs: FakeGcs) -> GcsBlobStore:
    from google.auth.credentials import AnonymousCredentials

    return GcsBlobStore(api_endpoint=gcs.url, credentials=AnonymousCredentials())


@pytest.fixture
def source(fake: FakeWandb, blobs: GcsBlobStore) -> WandbArtifacts:
    fake.artifacts.append(FakeArtifact("team", "digits", "digits-model", 3, V3, {}, ["candidate"]))
    fake.artifacts.append(FakeArtifact("team", "digits", "digits-model", 4, {"model.joblib": b"v4"}, {}, []))
    return WandbArtifacts(api_key=API_KEY, base_url=fake.url, cloud=blobs)


def folder(gcs: FakeGcs, prefix: str) -> dict[str, bytes]:
    """The objects under gs://BUCKET/<prefix>/, by their name below it."""
    start = prefix.rstrip("/") + "/"
    return {n.removeprefix(start): d for (b, n), d in gcs.objects.items() if b == BUCKET and n.startswith(start)}


def test_a_gs_destination_receives_the_files_of_the_version_the_alias_resolved_to(
    gcs: FakeGcs, source: WandbArtifacts
) -> None:
    fetched = source.fetch(f"{REF}:candidate", DEST)

    assert fetched.ref == f"{REF}:v3" and fetched.metadata["files"] == ["meta/params.json", "model.joblib"]
    assert folder(gcs, "root/runs/digits-1/model") == V3
    assert len(gcs.ops("upload")) == 2  # one upload per file


def test_a_fetch_into_a_gs_folder_leaves_no_object_of_an_earlier_fetch(gcs: FakeGcs, source: WandbArtifacts) -> None:
    gcs.put(BUCKET, "root/runs/digits-1/model/planted.py", b"import os")
    gcs.put(BUCKET, "root/runs/digits-1/model.other/keep.bin", b"a sibling folder sharing the prefix")
    source.fetch(f"{REF}:v4", DEST)

    assert folder(gcs, "root/runs/digits-1/model") == {"model.joblib": b"v4"}
    assert folder(gcs, "root/runs/digits-1/model.other") == {"keep.bin": b"a sibling folder sharing the prefix"}


def test_fetching_the_same_version_again_uploads_nothing(gcs: FakeGcs, source: WandbArtifacts) -> None:
    source.fetch(f"{REF}:v3", DEST)
    uploads = len(gcs.ops("upload"))
    source.fetch(f"{REF}:v3", DEST)  # a redelivered command, before the fetch was recorded
    assert len(gcs.ops("upload")) == uploads and folder(gcs, "root/runs/digits-1/model") == V3


def test_cloud_storage_unavailable_is_transient(gcs: FakeGcs, source: WandbArtifacts) -> None:
    gcs.fail["upload"] = [503]
    with pytest.raises(TransientError, match="GCS upload"):
        source.fetch(f"{REF}:v3", DEST)


def test_a_gs_destination_without_cloud_storage_is_refused_before_any_request(fake: FakeWandb) -> None:
    with pytest.raises(ValueError, match="dest .*Cloud Storage"):
        WandbArtifacts(api_key=API_KEY, base_url=fake.url).fetch(f"{REF}:v3", DEST)
    assert fake.calls == []


def test_a_wandb_run_on_gcp_evaluates_the_pinned_version_from_cloud_storage(
    fake: FakeWandb, gcs: FakeGcs, source: WandbArtifacts
) -> None:
    w = World()
    w.artifacts = source  # type: ignore[assignment]
    w.orch.d.artifact_root = ROOT_URI
    run = w.new_run(kind="wandb", sha=None, ref="refs/heads/main", artifact=f"{REF}:candidate")
    started = w.start(run)

    assert started.state is RunState.EVALUATING and started.trigger.artifact == f"{REF}:v3"
    evaluation = w.backend.submitted[started.jobs["evaluate"]]
    assert evaluation.env["RELAUNCH_CANDIDATE_DIR"] == started.model_uri == f"{ROOT_URI}/runs/{run.id}/model"
    assert folder(gcs, f"root/runs/{run.id}/model") == V3


def test_the_gcp_profile_gives_wandb_artifacts_a_cloud_storage_writer(tmp_path: Path) -> None:
    common = {"home": tmp_path / "home", "pipelines_dir": tmp_path / "pipelines", "artifacts": "wandb"}
    on_gcp = bootstrap.App(Settings(**common, artifact_root=ROOT_URI, wandb_api_key=API_KEY)).artifacts  # type: ignore[arg-type]
    assert isinstance(on_gcp, WandbArtifacts) and isinstance(on_gcp.cloud, GcsBlobStore)
    local = bootstrap.App(Settings(**common, wandb_api_key=API_KEY)).artifacts  # type: ignore[arg-type]
    assert isinstance(local, WandbArtifacts) and local.cloud is None
