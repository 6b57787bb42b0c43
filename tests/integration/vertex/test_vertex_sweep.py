"""VertexSweeps against the Vertex AI stand-in: the real JobServiceClient sends HyperparameterTuningJobs on loopback,
and the stand-in checks each body against the published API description and simulates the trials."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from relaunch.adapters.gcp.vertex_common import key_digest
from relaunch.adapters.gcp.vertex_sweep import SPEC_VARIABLE, VertexSweeps
from relaunch.adapters.gcp.vertex_training import VertexTrainingBackend
from relaunch.config_files import load_spec
from relaunch.domain.jobs import train_request
from relaunch.domain.model import PipelineRun, TimelineEntry
from relaunch.domain.spec_sweep import SweepSpec
from relaunch.domain.sweep import SweepRequest, as_job
from relaunch.service.sweep_step import JobsAndSweeps, SweepStep
from tests.integration.vertex.conftest import PARENT_PATH, PROJECT, REGION, ROOT, bodies, query
from tests.integration.vertex.test_vertex_training import IMAGE, run_and_paths
from tests.vertex_server import FakeVertex, JobRunner, VertexServer

TUNING = f"{PARENT_PATH}/hyperparameterTuningJobs"
SWEEP = SweepSpec.model_validate(
    {
        "method": "random",
        "parameters": {
            "C": {"type": "float", "low": 0.01, "high": 10, "log": True},
            "max_iter": {"type": "int", "low": 200, "high": 1000, "step": 400},
        },
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "max_trials": 4,
        "parallel_trials": 2,
        "early_stopping": {"type": "median"},
    }
)


@pytest.fixture
def sweeps(client_kwargs: dict[str, Any]) -> VertexSweeps:
    training = VertexTrainingBackend(PROJECT, REGION, service_account="t@p.iam.gserviceaccount.com", **client_kwargs)
    return VertexSweeps(training)


def sweep_request(spec: SweepSpec = SWEEP) -> tuple[SweepRequest, PipelineRun, Any]:
    run, paths = run_and_paths()
    pipeline = load_spec(ROOT / "pipelines" / "digits.yaml")
    trial = train_request(run, pipeline, IMAGE, paths)
    return SweepRequest(key=f"{run.id}:sweep", trial=trial, sweep=spec), run, paths


def finish(sweeps: VertexSweeps, sweep_id: str, polls: int = 10) -> Any:
    for _ in range(polls):
        status = sweeps.status(sweep_id)
        if status.state != "running":
            return status
    raise AssertionError(f"the sweep was still running after {polls} polls")


def test_start_sends_a_tuning_job_the_api_accepts(vertex: FakeVertex, sweeps: VertexSweeps) -> None:
    from google.cloud import aiplatform_v1 as v1

    request, run, paths = sweep_request()

    sweep_id = sweeps.start(request)

    assert sweep_id == f"projects/{vertex.project_number}/locations/{REGION}/hyperparameterTuningJobs/1001"
    assert vertex.refused == []
    [body] = bodies(vertex, "POST", TUNING)
    assert (body["maxTrialCount"], body["parallelTrialCount"], body["maxFailedTrialCount"]) == (4, 2, 4)
    study = body["studySpec"]
    assert study["algorithm"] == v1.StudySpec.Algorithm.RANDOM_SEARCH
    assert study["metrics"] == [{"metricId": "val_accuracy", "goal": v1.StudySpec.MetricSpec.GoalType.MAXIMIZE}]
    assert study["medianAutomatedStoppingSpec"] == {} and "decayCurveStoppingSpec" not in study  # on step counts
    assert study["measurementSelectionType"] == v1.StudySpec.MeasurementSelectionType.LAST_MEASUREMENT
    assert {p["parameterId"] for p in study["parameters"]} == {"C", "max_iter"}
    assert body["trialJobSpec"]["baseOutputDirectory"] == {"outputUriPrefix": paths.output}
    container = body["trialJobSpec"]["workerPoolSpecs"][0]["containerSpec"]
    assert container["imageUri"] == IMAGE
    env = {e["name"]: e["value"] for e in container["env"]}
    assert SweepSpec.model_validate_json(env[SPEC_VARIABLE]) == SWEEP
    assert body["labels"]["relaunch-key"] == key_digest(f"{run.id}:sweep")
    assert query(vertex, "GET", TUNING) == [
        {"filter": [f'labels.relaunch-key="{key_digest(run.id + ":sweep")}"'], "pageSize": ["10"]}
    ]


def test_the_stand_in_refuses_a_tuning_job_the_api_description_does_not_allow(vertex: FakeVertex) -> None:
    broken = {"displayName": "x", "maxTrialCount": 1, "studySpec": {"metrics": [{"metricId": "m", "goal": "UP"}]}}
    call = urllib.request.Request(
        f"{vertex.url}{TUNING}",
        data=json.dumps(broken).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )

    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(call, timeout=10)

    assert answer.value.code == 400
    goal = "hyperparameter_tuning_job.studySpec.metrics[0].goal"
    assert [r.problems for r in vertex.refused] == [
        [f"{goal}: 'UP' is not one of GOAL_TYPE_UNSPECIFIED, MAXIMIZE, MINIMIZE"]
    ]


def test_start_is_idempotent_on_the_key(vertex: FakeVertex, sweeps: VertexSweeps) -> None:
    request, _, _ = sweep_request()

    first = sweeps.start(request)
    again = sweeps.start(request)

    assert first == again
    assert len(bodies(vertex, "POST", TUNING)) == 1


def test_status_maps_the_trials_and_names_the_winner(vertex: FakeVertex, sweeps: VertexSweeps) -> None:
    request, _, paths = sweep_request()
    sweep_id = sweeps.start(request)

    first = sweeps.status(sweep_id)
    done = finish(sweeps, sweep_id)

    assert first.state == "running" and [t.state for t in first.trials] == ["running", "running"]
    assert done.state == "succeeded" and done.spec == SWEEP
    assert [t.number for t in done.trials] == [1, 2, 3, 4]
    for trial in done.trials:
        assert trial.state == "succeeded" and trial.output_dir == f"{paths.output}/{trial.number}"
        assert 0.01 <= float(trial.params["C"]) <= 10 and trial.params["max_iter"] in (200, 600, 1000)
        assert isinstance(trial.params["max_iter"], int)
        assert trial.objective == pytest.approx(vertex.tuning_objective(dict(trial.params)))
    best = max(done.trials, key=lambda t: t.objective or 0.0)
    assert done.message == f"trial {best.number} won: val_accuracy {best.objective:.4f} (4 trials)"
    assert as_job(done).state == "succeeded"


def test_failed_trials_fail_the_sweep_only_when_none_succeeded(vertex: FakeVertex, sweeps: VertexSweeps) -> None:
    vertex.tuning_objective = lambda params: None
    request, _, _ = sweep_request()

    done = finish(sweeps, sweeps.start(request))

    assert done.state == "failed"
    assert {t.state for t in done.trials} == {"failed"}
    assert done.message.startswith("no trial of the sweep succeeded (4 ended): the last said The trial's replica")


def test_cancel_stops_the_running_trials(vertex: FakeVertex, sweeps: VertexSweeps) -> None:
    request, _, _ = sweep_request()
    sweep_id = sweeps.start(request)
    sweeps.status(sweep_id)  # two trials running

    sweeps.cancel(sweep_id)
    sweeps.cancel(sweep_id)  # already cancelled: Vertex refuses, and that is no error

    status = sweeps.status(sweep_id)
    assert status.state == "cancelled"
    assert [t.state for t in status.trials] == ["cancelled", "cancelled"]
    assert len(vertex.calls("POST", ":cancel")) == 2
    with pytest.raises(KeyError):
        sweeps.status("projects/p/locations/r/customJobs/1")


class Timeline:
    """The StepStore part SweepStep uses."""

    def __init__(self) -> None:
        self.entries: list[TimelineEntry] = []

    def timeline(self, run_id: str) -> list[TimelineEntry]:
        return list(self.entries)

    def append_timeline(self, run_id: str, entry: TimelineEntry) -> None:
        self.entries.append(entry)

    def save_run(self, run: PipelineRun, entries: Sequence[TimelineEntry] = ()) -> PipelineRun:
        self.entries.extend(entries)
        return run.model_copy(update={"version": run.version + 1})


class Copies:
    """The BlobStore part SweepStep uses: records the copies it asks for."""

    def __init__(self) -> None:
        self.copied: list[tuple[str, str]] = []

    def copy_tree(self, src: str, dest: str) -> str:
        self.copied.append((src, dest))
        return dest


def test_the_winners_model_is_copied_where_the_evaluation_reads_the_candidate(
    vertex: FakeVertex, sweeps: VertexSweeps, tmp_path: Path
) -> None:
    request, run, paths = sweep_request()
    pipeline = load_spec(ROOT / "pipelines" / "digits.yaml").model_copy(update={"sweep": SWEEP})
    timeline, blobs = Timeline(), Copies()
    step = SweepStep(timeline, JobsAndSweeps(sweeps.training, sweeps), blobs, clock=lambda: 1.0)  # type: ignore[arg-type]
    sweep_id = step.submit(run, pipeline, paths)
    run = run.model_copy(update={"jobs": {"train": sweep_id}})

    states = [step.status(run, pipeline, paths)[0].state for _ in range(4)]

    assert states[-1] == "succeeded"
    winner = max(sweeps.status(sweep_id).trials, key=lambda t: t.objective or 0.0)
    assert blobs.copied[-1] == (f"{paths.output}/{winner.number}/model", paths.model)
    assert sorted(e.data["trial"] for e in timeline.entries if e.kind == "trial") == [1, 2, 3, 4]
    assert "trial" in step.label(run, "abc1234") and f"trial {winner.number} of 4" in step.label(run, "abc1234")


def test_with_a_runner_each_trial_runs_the_example_and_its_hypertune_report_is_its_objective(tmp_path: Path) -> None:
    """The gcp-emulated stack's way: each trial is examples/digits/train.py given --C=..., writing its model under
    <base>/<trial id>/model and its validation accuracy in the cloudml-hypertune file."""
    from google.auth.credentials import AnonymousCredentials

    search = SWEEP.model_copy(update={"max_trials": 2, "parameters": {"C": SWEEP.parameters["C"]}})
    request, _, paths = sweep_request(search)
    (tmp_path / "gcs" / paths.output.removeprefix("gs://").split("/")[0]).mkdir(parents=True)  # the bucket
    runner = JobRunner(image_folder=lambda uri: ROOT / "examples" / "digits")
    with VertexServer(FakeVertex(runner=runner, storage_root=tmp_path / "gcs")) as fake:
        training = VertexTrainingBackend(PROJECT, REGION, api_endpoint=fake.url, credentials=AnonymousCredentials())
        sweeps = VertexSweeps(training)
        sweep_id = sweeps.start(request)
        deadline = time.monotonic() + 120
        while (status := sweeps.status(sweep_id)).state == "running" and time.monotonic() < deadline:
            time.sleep(0.2)

    assert status.state == "succeeded", status.trials
    assert [t.state for t in status.trials] == ["succeeded", "succeeded"]
    for trial in status.trials:
        folder = tmp_path / "gcs" / trial.output_dir.removeprefix("gs://") / "model"
        assert (folder / "model.joblib").is_file()
        summary = json.loads((folder / "training_summary.json").read_text())
        assert summary["params"]["C"] == pytest.approx(float(trial.params["C"]))
        assert trial.objective is not None and 0.5 < trial.objective <= 1.0
    assert status.message.startswith("trial ") and "(2 trials)" in status.message
    assert paths.output in status.trials[0].output_dir
