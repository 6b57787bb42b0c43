"""A job's output environment: the domain names the output base; every backend gives the job what Vertex AI gives.

Vertex AI, for a CustomJob with baseOutputDirectory set, passes AIP_MODEL_DIR=<base>/model/,
AIP_CHECKPOINT_DIR=<base>/checkpoints/ and AIP_TENSORBOARD_LOG_DIR=<base>/logs/ to the containers
(https://cloud.google.com/vertex-ai/docs/reference/rest/v1/CustomJobSpec, field baseOutputDirectory).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from relaunch.adapters.local.environment import job_environment
from relaunch.config_files import load_spec
from relaunch.domain.jobs import OUTPUT_VARIABLES, RunPaths, eval_request, output_environment, train_request
from relaunch.domain.model import PipelineRun, Trigger

SPEC = load_spec(Path(__file__).resolve().parents[2] / "pipelines" / "digits.yaml")
BASE = "gs://relaunch-artifacts/root/runs/digits-1"


def run_and_paths() -> tuple[PipelineRun, RunPaths]:
    run = PipelineRun(id="digits-1", pipeline="digits", trigger=Trigger(kind="push", delivery_key="d", sha="a" * 40))
    return run.model_copy(update={"image": "img"}), RunPaths(output=BASE, evaluation=f"{BASE}/evaluation")


@pytest.mark.parametrize("base", [BASE, BASE + "/"])
def test_the_output_environment_is_exactly_vertexs(base: str) -> None:
    assert output_environment(base) == {
        "AIP_MODEL_DIR": f"{BASE}/model/",
        "AIP_CHECKPOINT_DIR": f"{BASE}/checkpoints/",
        "AIP_TENSORBOARD_LOG_DIR": f"{BASE}/logs/",
    }
    assert set(OUTPUT_VARIABLES) == set(output_environment(base))


def test_a_training_request_names_its_output_base_and_sets_no_variable_vertex_sets() -> None:
    run, paths = run_and_paths()
    request = train_request(run, SPEC, "img", paths)
    assert request.output_dir == BASE
    assert not [name for name in request.env if name.startswith("AIP_")]
    assert request.env["RELAUNCH_RUN_ID"] == "digits-1"


def test_the_model_relaunch_reads_is_the_folder_vertex_points_the_job_at() -> None:
    _, paths = run_and_paths()
    assert paths.model + "/" == output_environment(paths.output)["AIP_MODEL_DIR"]


def test_an_evaluation_writes_no_model_so_it_has_no_output_base() -> None:
    run, paths = run_and_paths()
    request = eval_request(run, SPEC, None, paths)
    assert request.output_dir is None and request.env["RELAUNCH_CANDIDATE_DIR"] == paths.model


def test_a_local_job_gets_vertexs_three_variables_from_its_output_base(tmp_path: Path) -> None:
    base = str(tmp_path / "runs" / "digits-1")
    env = job_environment({"RELAUNCH_RUN_ID": "digits-1"}, 1, base)
    assert {k: v for k, v in env.items() if k.startswith("AIP_")} == {
        "AIP_MODEL_DIR": f"{base}/model/",
        "AIP_CHECKPOINT_DIR": f"{base}/checkpoints/",
        "AIP_TENSORBOARD_LOG_DIR": f"{base}/logs/",
    }
    assert not [k for k in job_environment({}, 1, None) if k.startswith("AIP_")]  # an evaluation: none at all


@pytest.mark.parametrize("name", sorted(OUTPUT_VARIABLES))
def test_a_request_may_not_set_a_variable_the_backend_sets(name: str) -> None:
    with pytest.raises(ValueError, match=f"env.{name}"):
        job_environment({name: "/elsewhere"}, 1, "/art/runs/r")
