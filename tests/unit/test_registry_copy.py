"""Registration copies the model where no training job can write: the registered version never points at `runs/`.

Training jobs may write `<artifact root>/runs/` (on GCP an IAM condition; the trainer only reads `registry/`), so a
version left pointing at `runs/<id>/model` could be overwritten by any later push's job, and the endpoint would load it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from relaunch.config_files import load_spec
from relaunch.deploy.infra_file import load_infra
from relaunch.domain.commands import JobFinished, StartRun
from relaunch.domain.model import Check, Decision, Delivery, ModelVersion, PipelineRun, RunState, Trigger
from relaunch.domain.ports import TransientError
from relaunch.service.orchestrator import Deps, Orchestrator
from relaunch.service.rollout_step import RolloutStep
from tests.fakes import FakeBackend, FakeBlobs, FakeBuilder, FakeEndpoint, FakeNotifier, FakeRegistry, FakeStore

ROOT = Path(__file__).resolve().parents[2]
SPEC = load_spec(ROOT / "pipelines" / "digits.yaml")
ART = "gs://relaunch-artifacts/root"


class FlakyRegistry(FakeRegistry):
    """Fails its first `register` as a crash (or an unavailable Vertex AI) between copy and registration would."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    def register(
        self,
        pipeline: str,
        run_id: str,
        artifact_uri: str,
        metrics: dict[str, float],
        metadata: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        if self.failures:
            self.failures -= 1
            raise TransientError("Vertex AI unavailable")
        return super().register(pipeline, run_id, artifact_uri, metrics, metadata)


class RollWorld:
    def __init__(self, registry: FakeRegistry | None = None) -> None:
        self.store, self.registry, self.blobs = FakeStore(), registry or FakeRegistry(), FakeBlobs()
        self.endpoint = FakeEndpoint()
        self.step = RolloutStep(self.store, self.registry, self.endpoint, FakeNotifier(), self.blobs, artifact_root=ART)

    def gated(self, n: int) -> PipelineRun:
        trigger = Trigger(kind="push", delivery_key=f"d{n}", repo="relaunch-demo/digits", sha=f"{n:040d}")
        decision = Decision(promote=True, checks=[Check(name="floor", passed=True, detail="ok")], candidate={})
        run = PipelineRun(
            id=f"digits-{n}",
            pipeline="digits",
            trigger=trigger,
            state=RunState.ROLLING_OUT,
            decision=decision,
            model_uri=f"{ART}/runs/digits-{n}/model",
        )
        self.blobs.files[f"{ART}/runs/digits-{n}/model/model.joblib"] = f"weights of run {n}"
        self.store.record_delivery(Delivery(key=f"d{n}", source="github"), [run])
        return run


def test_the_registered_version_points_at_a_copy_under_the_registry_prefix_never_runs() -> None:
    w = RollWorld()
    done = w.step.run(w.gated(1), SPEC)

    assert done is not None and done.state is RunState.PROMOTED
    version = w.registry.versions["digits"][0]
    assert version.artifact_uri == f"{ART}/registry/digits/digits-1/model"
    assert "/runs/" not in version.artifact_uri
    assert w.blobs.files[f"{version.artifact_uri}/model.joblib"] == "weights of run 1"
    assert w.blobs.copies == [(f"{ART}/runs/digits-1/model", version.artifact_uri)]


def test_a_retried_registration_copies_nothing_twice_and_registers_one_version() -> None:
    w = RollWorld(FlakyRegistry())
    run = w.gated(1)
    with pytest.raises(TransientError):
        w.step.run(run, SPEC)
    assert w.registry.versions == {}  # the copy is done, the registration is not
    w.blobs.files[f"{ART}/runs/digits-1/model/model.joblib"] = "a later job's weights"  # the trainer may write runs/

    done = w.step.run(run, SPEC)
    assert done is not None and done.state is RunState.PROMOTED
    assert [v.version for v in w.registry.versions["digits"]] == ["v1"]
    assert len(w.blobs.copies) == 1
    assert w.blobs.files[f"{ART}/registry/digits/digits-1/model/model.joblib"] == "weights of run 1"


def test_a_model_that_cannot_be_copied_fails_the_run_and_registers_nothing() -> None:
    w = RollWorld()
    run = w.gated(1)
    w.blobs.refuse_copy = "src: no model files under it"
    done = w.step.run(run, SPEC)
    assert done is not None and done.state is RunState.FAILED
    assert "no model files" in done.reason and "registry" in done.reason
    assert w.registry.versions == {} and w.endpoint.calls == []


def test_through_the_orchestrator_a_promoted_version_and_the_next_champion_input_are_registry_copies() -> None:
    store, blobs, registry, backend = FakeStore(), FakeBlobs(), FakeRegistry(), FakeBackend()
    deps = Deps(
        store, FakeBuilder(), backend, blobs, registry, FakeEndpoint(), FakeNotifier(), lambda: {"digits": SPEC}, ART
    )
    orch = Orchestrator(deps)
    for n in (1, 2):
        trigger = Trigger(
            kind="push", delivery_key=f"d{n}", repo="relaunch-demo/digits", sha=f"{n:040d}", clone_url="file:///repo"
        )
        run = PipelineRun(id=f"digits-{n}", pipeline="digits", trigger=trigger)
        store.record_delivery(Delivery(key=f"d{n}", source="github"), [run])
        orch.handle(StartRun(run_id=run.id))
        for step in ("train", "evaluate"):
            if step == "evaluate":
                good = {"accuracy": 0.97 + n / 1000, "macro_f1": 0.97}
                champion = {"accuracy": 0.97, "macro_f1": 0.97} if n == 2 else None
                blobs.write_eval(f"{ART}/runs/{run.id}/evaluation", good, champion)
            job = store.runs[run.id].jobs[step]
            backend.finish(job)
            orch.handle(JobFinished(run_id=run.id, step=step, job_id=job, state="succeeded"))
    assert [v.artifact_uri for v in registry.versions["digits"]] == [
        f"{ART}/registry/digits/digits-1/model",
        f"{ART}/registry/digits/digits-2/model",
    ]
    staged = backend.submitted[store.runs["digits-2"].jobs["evaluate"]].env["RELAUNCH_CHAMPION_DIR"]
    assert blobs.staged[staged] == f"{ART}/registry/digits/digits-1/model"  # the champion input is the registry copy


def test_the_iam_plan_grants_the_trainer_runs_write_and_registry_read_exactly_where_the_code_puts_them() -> None:
    infra = load_infra(ROOT / "triggers" / "relaunch.yaml")
    root = infra.env["RELAUNCH_ARTIFACT_ROOT"]
    trainer = next(sa for sa in infra.service_accounts if sa.name == "relaunch-trainer")
    writable = [f"gs://{g.bucket}/{g.prefix}" for g in trainer.prefix_roles if g.role == "roles/storage.objectAdmin"]
    readable = [f"gs://{g.bucket}/{g.prefix}" for g in trainer.prefix_roles if g.role == "roles/storage.objectViewer"]

    w = RollWorld()
    w.step = RolloutStep(w.store, w.registry, w.endpoint, FakeNotifier(), w.blobs, artifact_root=root)
    run = w.gated(1).model_copy(update={"model_uri": f"{root}/runs/digits-1/model"})
    w.blobs.files[f"{root}/runs/digits-1/model/model.joblib"] = "weights"
    w.step.run(run, SPEC)
    registered = w.registry.versions["digits"][0].artifact_uri + "/model.joblib"

    assert any(f"{run.model_uri}/model.joblib".startswith(p) for p in writable)  # where the job writes its model
    assert any(registered.startswith(p) for p in readable)
    assert not any(registered.startswith(p) for p in writable)
