"""`relaunch lineage` and the W&B lines of `relaunch runs show`, on a SQLite store and run folders jobs left."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from relaunch.adapters.local.sqlite_store import SqliteRunStore
from relaunch.cli import main
from relaunch.domain.effects import Effect
from relaunch.domain.environments import PromotionRecord
from relaunch.domain.model import Delivery, PipelineRun, RunState, Trigger
from relaunch.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
A, B = "a" * 40, "b" * 40
OFFLINE_RUN = ROOT / "tests" / "fixtures" / "wandb-offline"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    spec = yaml.safe_load((ROOT / "pipelines" / "digits.yaml").read_text())
    del spec["endpoint"], spec["rollout"]
    spec["environments"] = [{"name": "staging", "endpoint": "digits-staging"}, {"name": "production", "endpoint": "d"}]
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    (pipelines / "digits.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.setenv("RELAUNCH_HOME", str(tmp_path))
    monkeypatch.setenv("RELAUNCH_PIPELINES_DIR", str(pipelines))
    settings = Settings(home=tmp_path, pipelines_dir=pipelines)
    store = SqliteRunStore(settings.store_path)
    for run_id, sha, version, at in (
        ("digits-1", A, "v1", 1e9),
        ("digits-2", B, "v2", 2e9),
        ("digits-3", A, None, 3e9),
    ):
        trigger = Trigger(kind="push", delivery_key=run_id, repo="o/digits", sha=sha, ref="refs/heads/main")
        state = RunState.PROMOTED if version else RunState.REJECTED
        run = PipelineRun(id=run_id, pipeline="digits", trigger=trigger, model_version=version, created_at=at)
        store.record_delivery(Delivery(key=run_id, source="github", run_ids=[run_id]), [run])
        store.save_run(run.model_copy(update={"state": state}))
        if version:
            for env in ("staging", "production"):
                store.record_promotion(
                    PromotionRecord(pipeline="digits", environment=env, version=version, run_id=run_id, sha=sha, at=at)
                )
    store.record_promotion(  # production rolled back to v1: the rollback's record names the run it undid
        PromotionRecord(
            pipeline="digits", environment="production", kind="rolled_back", version="v1", run_id="digits-2", at=3e9
        )
    )
    store.close()
    model = settings.artifacts_dir.resolve() / "runs" / "digits-1" / "model"
    model.mkdir(parents=True)
    (model / "training_summary.json").write_text(json.dumps({"data_version": "sklearn-digits:0123abcd"}))
    return tmp_path


def test_lineage_walks_back_from_an_environment_to_the_commit_the_data_and_the_run(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lineage", "digits", "production"]) == 0
    out = capsys.readouterr().out
    assert "digits v1  served in production" in out
    assert f"commit  {A}  (refs/heads/main of o/digits)" in out
    assert "data    sklearn-digits:0123abcd" in out and "run     digits-1  (push, promoted)" in out
    assert main(["lineage", "digits", "v2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["run_id"] == "digits-2"


def test_lineage_walks_forward_from_a_commit_to_every_model_and_where_it_serves(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lineage", "--commit", A[:8]]) == 0
    out = capsys.readouterr().out
    assert "digits v1  served in production" in out  # staging serves v2 now
    assert "digits-3  no model (rejected)" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["lineage", "digits", "canary"], "no environment or version 'canary' of digits"),
        (["lineage", "nope"], "no pipeline 'nope'"),
        (["lineage", "--commit", "zz\x1b[31m"], "commit must be 7 to 40 lower-case hex digits"),
        (["lineage"], "give a pipeline (and an environment or version) or --commit SHA"),
    ],
)
def test_a_bad_question_is_one_line_on_stderr(
    home: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "\x1b" not in err


def test_runs_show_names_the_offline_wandb_runs_and_the_model_they_logged(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = Settings(home=home).artifacts_dir.resolve() / "runs" / "digits-1" / "wandb"
    shutil.copytree(OFFLINE_RUN, folder)
    assert main(["runs", "show", "digits-1"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"W&B offline, not synced: {folder}" in out
    assert "train run" in out and "logged relaunch-demo/digits/digits-model:relaunch-digits-1" in out
    assert "evaluate run" in out and "used relaunch-demo/digits/digits-model:relaunch-digits-1" in out


def test_runs_show_says_where_relaunch_synced_the_runs_once_it_has(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = Settings(home=home).artifacts_dir.resolve() / "runs" / "digits-1" / "wandb"
    shutil.copytree(OFFLINE_RUN, folder)
    store = SqliteRunStore(Settings(home=home).store_path)
    synced = {"train": "https://wandb.ai/relaunch-demo/digits/runs/9bbryk8y"}
    store.put_effect(
        "digits-1", Effect.WANDB_SYNC, {"artifact": "relaunch-demo/digits/digits-model:v0", "run_urls": synced}
    )
    store.close()
    assert main(["runs", "show", "digits-1"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "not synced" not in out
    assert "synced by relaunch: model relaunch-demo/digits/digits-model:v0" in out
    assert "https://wandb.ai/relaunch-demo/digits/runs/9bbryk8y" in out


def test_runs_show_says_when_a_wandb_file_is_not_one(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = Settings(home=home).artifacts_dir.resolve() / "runs" / "digits-1" / "wandb" / "offline-run-x-abc"
    run.mkdir(parents=True)
    (run / "run-abc.wandb").write_bytes(b"not wandb")
    assert main(["runs", "show", "digits-1"]) == 0
    assert "W&B run-abc.wandb: not a W&B run file (no W&B header)" in " ".join(capsys.readouterr().out.split())
