"""WandbArtifacts through the real wandb SDK against a local W&B API: lookups, file downloads, alias moves."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaunch.adapters.wandb.artifacts import WandbArtifacts, numeric
from tests.integration.wandb.conftest import API_KEY
from tests.wandb_server import FakeArtifact, FakeWandb

MODEL = b"\x80\x04joblib-model-bytes"


@pytest.fixture
def source(fake: FakeWandb) -> WandbArtifacts:
    summary = {"accuracy": 0.93, "log_loss": 0.21, "epochs": 3, "best": True, "note": "ok", "_step": 3, "cm": {"a": 1}}
    fake.add_run("train-abc", "finished", summary)
    files = {"model.joblib": MODEL, "meta/params.json": b'{"C": 1.0}'}
    fake.artifacts.append(
        FakeArtifact(
            "team", "digits", "digits-model", 3, files, {"framework": "sklearn"}, ["latest"], created_by="train-abc"
        )
    )
    fake.artifacts.append(
        FakeArtifact("team", "digits", "digits-model", 2, {"model.joblib": b"old"}, {}, ["production"])
    )
    return WandbArtifacts(api_key=API_KEY, base_url=fake.url)


def test_fetch_downloads_the_version_files_and_returns_metadata_and_reported_metrics(
    fake: FakeWandb, source: WandbArtifacts, tmp_path: Path
) -> None:
    fetched = source.fetch("team/digits/digits-model:v3", str(tmp_path / "candidate"))

    assert (tmp_path / "candidate" / "model.joblib").read_bytes() == MODEL
    assert (tmp_path / "candidate" / "meta" / "params.json").read_text() == '{"C": 1.0}'
    assert fetched.ref == "team/digits/digits-model:v3" and fetched.artifact_id == fake.artifacts[0].id
    meta = fetched.metadata
    assert meta["type"] == "model" and meta["metadata"] == {"framework": "sklearn"}
    assert meta["files"] == ["meta/params.json", "model.joblib"]
    assert "latest" in meta["aliases"]
    assert meta["produced_by"] == "team/digits/train-abc"
    assert fetched.reported_metrics == {"accuracy": 0.93, "log_loss": 0.21, "epochs": 3.0}
    (lookup,) = fake.called("ArtifactMembershipByName")
    assert lookup.variables == {"entity": "team", "project": "digits", "name": "digits-model:v3"}
    artifact_id = fake.artifacts[0].id.rstrip("=")
    assert sorted(fake.downloads) == [
        f"/files/{artifact_id}/meta/params.json",
        f"/files/{artifact_id}/model.joblib",
        f"/manifests/{artifact_id}",
    ]


def test_an_alias_resolves_to_its_version(source: WandbArtifacts, tmp_path: Path) -> None:
    fetched = source.fetch("team/digits/digits-model:production", str(tmp_path / "model"))

    assert fetched.ref == "team/digits/digits-model:v2" and (tmp_path / "model" / "model.joblib").read_bytes() == b"old"
    assert fetched.metadata["produced_by"] is None and fetched.reported_metrics == {}


def test_set_alias_adds_it_to_the_version_once(fake: FakeWandb, source: WandbArtifacts) -> None:
    source.set_alias("team/digits/digits-model:v3", "production")

    (added,) = fake.called("AddAliases")
    assert added.variables["input"] == {
        "artifactID": fake.artifacts[0].id,
        "aliases": [
            {
                "alias": "production",
                "entityName": "team",
                "projectName": "digits",
                "artifactCollectionName": "digits-model",
            }
        ],
    }
    assert "production" in fake.artifacts[0].aliases and "production" not in fake.artifacts[1].aliases
    source.set_alias("team/digits/digits-model:v3", "production")
    assert len(fake.called("AddAliases")) == 1


def test_a_gs_destination_is_refused_before_any_request(fake: FakeWandb, source: WandbArtifacts) -> None:
    with pytest.raises(ValueError, match="needs Cloud Storage"):
        source.fetch("team/digits/digits-model:v3", "gs://bucket/runs/r1/candidate")
    assert fake.calls == []


def test_a_missing_version_is_a_permanent_error(source: WandbArtifacts, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="digits-model:v9"):
        source.fetch("team/digits/digits-model:v9", str(tmp_path))


@pytest.mark.parametrize("ref", ["digits-model:v3", "team/digits/digits-model", "team/digits/a/b:v1", ""])
def test_a_malformed_ref_is_named(fake: FakeWandb, source: WandbArtifacts, ref: str) -> None:
    with pytest.raises(ValueError, match="artifact ref"):
        source.set_alias(ref, "production")
    assert fake.calls == []


def test_settings_are_checked_and_the_key_stays_out_of_reprs() -> None:
    with pytest.raises(ValueError, match="api_key"):
        WandbArtifacts(api_key="", base_url="https://api.wandb.ai")
    assert API_KEY not in repr(WandbArtifacts(api_key=API_KEY, base_url="https://api.wandb.ai"))


def test_numeric_keeps_finite_numbers_only() -> None:
    summary = {"a": 1, "b": 0.5, "c": True, "d": "x", "_runtime": 9.0, "e": float("inf"), "f": None, "g": [1]}
    assert numeric(summary) == {"a": 1.0, "b": 0.5}
