"""The orchestrator driving a run from push to promoted on the Vertex adapters (training, registry, endpoint)."""

from __future__ import annotations

from typing import Any

from relaunch.adapters.gcp.vertex_endpoint import VertexEndpoint
from relaunch.adapters.gcp.vertex_registry import VertexRegistry
from relaunch.adapters.gcp.vertex_training import VertexTrainingBackend
from relaunch.config_files import load_spec
from relaunch.domain.commands import JobFinished, StartRun
from relaunch.domain.model import Delivery, JobStep, PipelineRun, RunState, Trigger
from relaunch.service.orchestrator import Deps, Orchestrator
from tests.fakes import FakeBlobs, FakeBuilder, FakeNotifier, FakeStore
from tests.integration.vertex.conftest import PROJECT, REGION, ROOT
from tests.vertex_server import FakeVertex

SPEC = load_spec(ROOT / "pipelines" / "digits.yaml")
ARTIFACTS = "gs://relaunch-artifacts/root"


class VertexWorld:
    """The orchestrator with the Vertex adapters; store, builder, blobs and notifier are the usual fakes."""

    def __init__(self, vertex: FakeVertex, client_kwargs: dict[str, Any]) -> None:
        self.vertex = vertex
        self.store, self.blobs = FakeStore(), FakeBlobs()
        self.backend = VertexTrainingBackend(PROJECT, REGION, **client_kwargs)
        self.registry = VertexRegistry(
            PROJECT, REGION, serving_image="serving:1", poll_interval_s=0.01, **client_kwargs
        )
        self.endpoint = VertexEndpoint(PROJECT, REGION, poll_interval_s=0.01, **client_kwargs)
        deps = Deps(
            self.store,
            FakeBuilder(),
            self.backend,
            self.blobs,
            self.registry,
            self.endpoint,
            FakeNotifier(),
            lambda: {"digits": SPEC},
            ARTIFACTS,
        )
        self.orch = Orchestrator(deps)

    def promote(self, n: int, accuracy: float, champion: float | None = None) -> PipelineRun:
        trigger = Trigger(kind="push", delivery_key=f"d{n}", repo="relaunch-demo/digits", sha=f"{n:040d}")
        run = PipelineRun(id=f"digits-{n}", pipeline="digits", trigger=trigger)
        self.store.record_delivery(Delivery(key=f"d{n}", source="github"), [run])
        self.orch.handle(StartRun(run_id=run.id))
        self._finish(run.id, "train")
        metrics = {"accuracy": accuracy, "macro_f1": accuracy}
        against = None if champion is None else {"accuracy": champion}
        self.blobs.write_eval(f"{ARTIFACTS}/runs/{run.id}/evaluation", metrics, against)
        return self._finish(run.id, "evaluate")

    def _finish(self, run_id: str, step: JobStep) -> PipelineRun:
        job = self.store.runs[run_id].jobs[step]
        self.vertex.set_job(job, state="JOB_STATE_SUCCEEDED", startTime="2024-05-01T10:00:00Z")
        self.vertex.set_job(job, endTime="2024-05-01T10:03:00Z")
        result = self.orch.handle(JobFinished(run_id=run_id, step=step, job_id=job, state="succeeded"))
        assert result is not None
        return result


def test_two_promotions_on_vertex(vertex: FakeVertex, client_kwargs: dict[str, Any]) -> None:
    world = VertexWorld(vertex, client_kwargs)

    first = world.promote(1, 0.97)
    second = world.promote(2, 0.98, champion=0.97)

    assert (first.state, first.model_version) == (RunState.PROMOTED, "v1")
    assert (second.state, second.model_version) == (RunState.PROMOTED, "v2")
    assert second.stage_durations == {"train": 180.0, "evaluate": 180.0}
    train = next(r.body for r in vertex.calls("POST", "/customJobs") if r.body["labels"]["relaunch-step"] == "train")
    assert train["jobSpec"]["baseOutputDirectory"] == {"outputUriPrefix": f"{ARTIFACTS}/runs/digits-1"}
    uploads = [r.body["model"]["artifactUri"] for r in vertex.calls("POST", "models:upload")]
    # copies the trainer may only read, never its writable runs/ output (see tests/unit/test_registry_copy.py)
    assert uploads == [f"{ARTIFACTS}/registry/digits/digits-{n}/model" for n in (1, 2)]
    assert world.endpoint.traffic("digits") == {"v2": 100}  # v1 moved to 0% and was undeployed
    assert len(vertex.calls("POST", ":undeployModel")) == 1
    champion = world.registry.champion("digits")
    assert champion is not None and (champion.version, champion.run_id) == ("v2", "digits-2")
    assert vertex.models["relaunch-digits"]["1"]["versionAliases"] == []
