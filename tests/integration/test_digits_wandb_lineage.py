"""The digits example's W&B lineage, read back from the offline run files wandb wrote.

The example's train.py and evaluate.py are run as the local agent runs a job (its allowlisted environment, the
request's variables from domain/jobs.py, cwd the checkout), without a stack: the training run logs its metrics and the
model as an artifact carrying the commit, the relaunch run id and the data version; the evaluation is a run of its
own that names that very artifact (by content digest) and the run that produced it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from relaunch.adapters.local.environment import job_environment
from relaunch.adapters.wandb.offline_runs import OfflineRun, offline_runs, read_run
from relaunch.config_files import load_spec
from relaunch.domain.jobs import RunPaths, eval_request, train_request
from relaunch.domain.model import JobRequest, PipelineRun, RunState, Trigger
from relaunch.domain.spec_tracking import TrackingSpec
from tests.fakes import FakeStore

pytest.importorskip("wandb")

ROOT = Path(__file__).resolve().parents[2]
TRACKED = TrackingSpec(wandb="offline")  # what `relaunch demo` turns on
DIGITS = load_spec(ROOT / "pipelines" / "digits.yaml").model_copy(update={"tracking": TRACKED})
SHA = "c0ffee" + "0" * 34


def _run() -> PipelineRun:
    trigger = Trigger(kind="push", delivery_key="d1", repo="relaunch-demo/digits", sha=SHA, ref="refs/heads/main")
    return PipelineRun(id="digits-d1", pipeline="digits", trigger=trigger).model_copy(update={"image": "img"})


def _job(request: JobRequest, checkout: Path, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**job_environment(request.env, 1, request.output_dir), **(extra or {})}
    command = [sys.executable if part == "python" else part for part in request.command]
    return subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def lineage(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[OfflineRun]]:
    tmp = tmp_path_factory.mktemp("lineage")
    checkout = tmp / "checkout"
    shutil.copytree(ROOT / "examples" / "digits", checkout, ignore=shutil.ignore_patterns("__pycache__"))
    base = tmp / "runs" / "digits-d1"
    paths, run = RunPaths(output=str(base), evaluation=str(base / "evaluation")), _run()
    for request in (train_request(run, DIGITS, "img", paths), eval_request(run, DIGITS, None, paths)):
        done = _job(request, checkout)
        assert done.returncode == 0, done.stdout + done.stderr
    return base, offline_runs(base / "wandb")


def test_the_training_run_logged_its_metrics_and_the_model_with_its_provenance(
    lineage: tuple[Path, list[OfflineRun]],
) -> None:
    _, runs = lineage
    train = next(r for r in runs if r.job_type == "train")
    assert (train.entity, train.project, train.group) == ("relaunch-demo", "digits", "digits-d1")
    assert (
        train.summary["train_accuracy"] > 0.9 and train.history[-1]["train_accuracy"] == train.summary["train_accuracy"]
    )
    assert train.config["C"] == 1.0  # params.json
    [model] = train.artifacts
    assert (model.name, model.type) == ("digits-model", "model")  # the collection promotion aliases
    assert model.metadata["commit_sha"] == SHA and model.metadata["relaunch_run_id"] == "digits-d1"
    assert model.metadata["data_version"].startswith("sklearn-digits:")
    assert set(model.aliases) == {"latest", "relaunch-digits-d1"}  # finds this version once synced


def test_the_evaluation_is_its_own_run_that_names_the_model_it_scored(lineage: tuple[Path, list[OfflineRun]]) -> None:
    _, runs = lineage
    train = next(r for r in runs if r.job_type == "train")
    evaluation = next(r for r in runs if r.job_type == "evaluate")
    assert evaluation.run_id != train.run_id and evaluation.group == "digits-d1"
    used = evaluation.config["model_artifact"]
    assert used == {
        "name": "relaunch-demo/digits/digits-model",
        "alias": "relaunch-digits-d1",
        "digest": train.artifacts[0].digest,  # the very files training logged
        "logged_by": train.run_id,
    }
    assert 0.9 < evaluation.summary["candidate/accuracy"] <= 1.0
    assert not evaluation.artifacts  # it scores the model; it produces none


def test_a_pipeline_without_tracking_writes_no_wandb_files_and_never_imports_wandb(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "examples" / "digits", checkout, ignore=shutil.ignore_patterns("__pycache__"))
    poisoned = tmp_path / "poison" / "wandb"
    poisoned.mkdir(parents=True)
    (poisoned / "__init__.py").write_text("raise SystemExit('wandb was imported')\n")
    spec = DIGITS.model_copy(update={"tracking": DIGITS.tracking.model_copy(update={"wandb": "off"})})
    base = tmp_path / "runs" / "digits-d1"
    paths, run = RunPaths(output=str(base), evaluation=str(base / "evaluation")), _run()
    for request in (train_request(run, spec, "img", paths), eval_request(run, spec, None, paths)):
        done = _job(request, checkout, {"PYTHONPATH": str(poisoned.parent)})
        assert done.returncode == 0, done.stdout + done.stderr
    assert not (base / "wandb").exists()


def test_a_file_that_is_not_a_wandb_run_is_one_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "run-x.wandb"
    bad.write_bytes(b":W&B\xe1\xbe\x00" + b"\xff" * 40)
    with pytest.raises(ValueError, match=r"^run-x\.wandb: not a W&B run file"):
        read_run(bad)
    bad.write_bytes(b"hello")
    with pytest.raises(ValueError, match="no W&B header"):
        read_run(bad)


def test_relaunch_syncs_the_offline_runs_links_the_evaluation_to_the_model_and_promotion_aliases_that_version(
    lineage: tuple[Path, list[OfflineRun]],
) -> None:
    from relaunch.adapters.wandb.sync import WandbSync
    from relaunch.emulated.wandb import serve
    from relaunch.emulated.wandb_uploads import used_by
    from relaunch.service.tracking_step import TrackingStep

    base, runs = lineage
    train = next(r for r in runs if r.job_type == "train")
    evaluation = next(r for r in runs if r.job_type == "evaluate")
    online = DIGITS.model_copy(update={"tracking": TrackingSpec(wandb="online")})
    store, run = FakeStore(), _run()
    store.runs[run.id] = run
    with serve(api_key="k" * 40) as fake:
        syncer = WandbSync(api_key="k" * 40, base_url=fake.url)
        step = TrackingStep(store, syncer, lambda r: RunPaths(str(base), str(base / "evaluation")), "production")
        step.sync(run, online)
        step.sync(run, online)  # a redelivered command: nothing is uploaded twice
        assert not fake.refused and fake.operations().count("CreateArtifact") == 1
        assert set(fake.synced) == {train.run_id, evaluation.run_id}  # both runs, as wandb-core created them
        assert fake.synced[train.run_id]["history"][-1]["train_accuracy"] == train.summary["train_accuracy"]
        [model] = fake.artifacts
        assert (model.collection, model.version, model.state) == ("digits-model", 0, "COMMITTED")
        assert model.metadata["commit_sha"] == SHA and model.metadata["relaunch_run_id"] == "digits-d1"
        assert model.metadata["data_version"].startswith("sklearn-digits:")
        assert model.digest == train.artifacts[0].digest
        assert set(model.files) == {"model.joblib", "training_summary.json"} and model.created_by == train.run_id
        assert used_by(fake, evaluation.run_id) == [model]  # the evaluation is linked to the very version it scored
        [note] = [e for e in store.timelines[run.id] if e.message.startswith("synced")]
        assert note.data["artifact"] == "relaunch-demo/digits/digits-model:v0"
        assert note.data["wandb_run_url"] == f"{fake.url}/relaunch-demo/digits/runs/{evaluation.run_id}"
        assert note.data["wandb_runs"]["train"] == f"{fake.url}/relaunch-demo/digits/runs/{train.run_id}"
        # promotion moves the alias onto that version, through the alias code W&B-triggered runs use
        step.follow(store.save_run(run.model_copy(update={"state": RunState.PROMOTED}), []), online, None)
        assert "production" in model.aliases and run.trigger.artifact is None
