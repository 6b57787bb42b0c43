"""W&B tracking is opt-in per pipeline: a spec that asks for it gives its jobs an offline W&B run in the run's folder
(and never a key); a spec that does not gives them no W&B variable at all, so their jobs never import wandb."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from relaunch.config_files import load_spec
from relaunch.demo import demo_specs
from relaunch.domain.jobs import RunPaths, eval_request, train_request
from relaunch.domain.model import PipelineRun, Trigger
from relaunch.domain.spec import PipelineSpec, SpecError
from relaunch.domain.spec_tracking import TrackingSpec
from relaunch.domain.tracking import tracking_environment

ROOT = Path(__file__).resolve().parents[2]
DIGITS = load_spec(ROOT / "pipelines" / "digits.yaml").model_copy(update={"tracking": TrackingSpec(wandb="offline")})
BASE = "/home/u/.relaunch/artifacts/runs/digits-1"


def _run() -> PipelineRun:
    trigger = Trigger(kind="push", delivery_key="d", sha="a" * 40)
    return PipelineRun(id="digits-1", pipeline="digits", trigger=trigger).model_copy(update={"image": "img"})


def _paths() -> RunPaths:
    return RunPaths(output=BASE, evaluation=f"{BASE}/evaluation")


def _without_tracking() -> PipelineSpec:
    return DIGITS.model_copy(update={"tracking": DIGITS.tracking.model_copy(update={"wandb": "off"})})


def test_the_shipped_spec_leaves_it_off_and_the_demo_turns_it_on(tmp_path: Path) -> None:
    assert load_spec(ROOT / "pipelines" / "digits.yaml").tracking.wandb == "off"  # tests copy it: they pay nothing
    for tracking, expected in ((True, "offline"), (False, "off")):
        dest = demo_specs(ROOT / "pipelines", tmp_path / str(tracking), tmp_path / "repo", tracking=tracking)
        assert load_spec(dest / "digits.yaml").tracking.wandb == expected


def test_a_tracked_training_job_gets_an_offline_run_in_its_own_folder_and_no_key() -> None:
    env = train_request(_run(), DIGITS, "img", _paths()).env
    assert env["WANDB_MODE"] == "offline"
    assert env["WANDB_DIR"] == BASE  # wandb makes BASE/wandb/offline-run-*
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        assert env[name].startswith(f"{BASE}/wandb/"), name  # the sandbox hides HOME: nothing is written there
    assert (env["WANDB_ENTITY"], env["WANDB_PROJECT"]) == ("relaunch-demo", "digits")
    assert env["RELAUNCH_WANDB_ARTIFACT"] == "digits-model"  # the collection W&B events and promotion name
    assert env["WANDB_RUN_GROUP"] == "digits-1"  # training and evaluation of one relaunch run side by side
    assert not any(k in env for k in ("WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_RUN_ID"))


def test_the_evaluation_job_logs_to_the_same_folder() -> None:
    env = eval_request(_run(), DIGITS, None, _paths()).env
    assert (env["WANDB_MODE"], env["WANDB_DIR"], env["WANDB_RUN_GROUP"]) == ("offline", BASE, "digits-1")


def test_an_untracked_pipeline_gives_its_jobs_no_wandb_variable() -> None:
    spec = _without_tracking()
    for request in (train_request(_run(), spec, "img", _paths()), eval_request(_run(), spec, None, _paths())):
        assert not [k for k in request.env if k.startswith(("WANDB_", "RELAUNCH_WANDB"))]


def test_without_a_wandb_source_the_names_come_from_the_pipeline() -> None:
    spec = DIGITS.model_copy(update={"source": DIGITS.source.model_copy(update={"wandb": None})})
    env = tracking_environment(spec, "digits-1", BASE)
    assert (env["WANDB_PROJECT"], env["RELAUNCH_WANDB_ARTIFACT"]) == ("digits", "digits-model")
    assert "WANDB_ENTITY" not in env


def test_online_tracking_still_logs_offline_in_the_job_and_never_gives_it_a_key() -> None:
    spec = DIGITS.model_copy(update={"tracking": TrackingSpec(wandb="online")})  # relaunch uploads after the job
    for request in (train_request(_run(), spec, "img", _paths()), eval_request(_run(), spec, None, _paths())):
        assert request.env["WANDB_MODE"] == "offline" and request.env["WANDB_DIR"] == BASE
        assert not any(k in request.env for k in ("WANDB_API_KEY", "WANDB_BASE_URL"))


def test_a_spec_variable_cannot_point_tracking_elsewhere() -> None:
    spec = DIGITS.model_copy(update={"train": DIGITS.train.model_copy(update={"env": {"WANDB_MODE": "online"}})})
    assert train_request(_run(), spec, "img", _paths()).env["WANDB_MODE"] == "offline"


@pytest.mark.parametrize("value", ["sync", "Online", "Offline", True])
def test_an_unknown_tracking_mode_is_an_error_naming_the_file_and_field(tmp_path: Path, value: object) -> None:
    raw = yaml.safe_load((ROOT / "pipelines" / "digits.yaml").read_text())
    raw["tracking"] = {"wandb": value}
    path = tmp_path / "digits.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError, match=r"digits\.yaml.*tracking\.wandb"):
        load_spec(path)
