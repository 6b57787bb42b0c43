"""An alias moved between fetch and promotion: the real wandb SDK against the local W&B API, then the whole run."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaunch.adapters.wandb.artifacts import WandbArtifacts
from relaunch.domain.model import RunState
from tests.integration.wandb.conftest import API_KEY
from tests.unit.test_orchestrator import GOOD, World
from tests.wandb_server import FakeArtifact, FakeWandb

REF = "team/digits/digits-model"


@pytest.fixture
def source(fake: FakeWandb) -> WandbArtifacts:
    fake.artifacts.append(FakeArtifact("team", "digits", "digits-model", 3, {"model.joblib": b"v3"}, {}, ["candidate"]))
    fake.artifacts.append(FakeArtifact("team", "digits", "digits-model", 4, {"model.joblib": b"v4"}, {}, []))
    fake.artifacts.append(FakeArtifact("attacker", "other", "evil-model", 0, {"model.joblib": b"evil"}, {}, []))
    return WandbArtifacts(api_key=API_KEY, base_url=fake.url)


def move_candidate_to_v4(fake: FakeWandb) -> None:
    v3, v4 = fake.artifacts[0], fake.artifacts[1]
    v3.aliases.remove("candidate")
    v4.aliases.append("candidate")


def test_fetch_reports_the_concrete_version_an_alias_resolved_to(
    fake: FakeWandb, source: WandbArtifacts, tmp_path: Path
) -> None:
    fetched = source.fetch(f"{REF}:candidate", str(tmp_path / "model"))
    assert fetched.ref == f"{REF}:v3" and fetched.artifact_id == fake.artifacts[0].id
    assert (tmp_path / "model" / "model.joblib").read_bytes() == b"v3"


def test_the_promote_alias_lands_on_the_fetched_version_after_the_alias_moved(
    fake: FakeWandb, source: WandbArtifacts, tmp_path: Path
) -> None:
    fetched = source.fetch(f"{REF}:candidate", str(tmp_path / "model"))
    move_candidate_to_v4(fake)
    source.set_alias(fetched.ref, "production")
    assert "production" in fake.artifacts[0].aliases and "production" not in fake.artifacts[1].aliases


def test_set_alias_refuses_a_ref_that_names_an_alias_before_any_request(
    fake: FakeWandb, source: WandbArtifacts
) -> None:
    with pytest.raises(ValueError, match="concrete version"):
        source.set_alias(f"{REF}:candidate", "production")
    assert fake.called("AddAliases") == [] and fake.called("ArtifactMembershipByName") == []


def test_a_fetch_into_a_folder_leaves_no_file_of_an_earlier_fetch(source: WandbArtifacts, tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "planted.py").write_text("import os")
    source.fetch(f"{REF}:v4", str(tmp_path / "model"))
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["model.joblib"]


def test_a_whole_run_promotes_the_evaluated_version_when_the_alias_moves_during_evaluation(
    fake: FakeWandb, source: WandbArtifacts, tmp_path: Path
) -> None:
    w = World()
    w.artifacts = source  # type: ignore[assignment]
    w.orch.d.artifact_root = str(tmp_path)
    run = w.new_run(kind="wandb", sha=None, ref="refs/heads/main", artifact=f"{REF}:candidate")
    started = w.start(run)
    assert started.state is RunState.EVALUATING and started.trigger.artifact == f"{REF}:v3"
    move_candidate_to_v4(fake)
    w.blobs.write_eval(f"{tmp_path}/runs/{run.id}/evaluation", GOOD)
    done = w.finish(run, "evaluate")
    assert (
        done.state is RunState.PROMOTED
        and (tmp_path / "runs" / run.id / "model" / "model.joblib").read_bytes() == b"v3"
    )
    assert "production" in fake.artifacts[0].aliases and "production" not in fake.artifacts[1].aliases
    assert [c.variables["name"] for c in fake.called("ArtifactMembershipByName")].count("digits-model:candidate") == 1
