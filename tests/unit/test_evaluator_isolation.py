"""The evaluator is not the candidate: which commit evaluates a run, and what the evaluation job is handed."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaunch.config_files import load_spec
from relaunch.domain.commands import JobFinished, StartRun
from relaunch.domain.evaluator import NoEvaluator, choose
from relaunch.domain.model import Delivery, JobRequest, PipelineRun, RunState, Trigger
from relaunch.domain.spec import PipelineSpec
from relaunch.service.orchestrator import Deps, Orchestrator
from tests.fakes import FakeBackend, FakeBlobs, FakeBuilder, FakeEndpoint, FakeNotifier, FakeRegistry, FakeStore

SPEC = load_spec(Path(__file__).resolve().parents[2] / "pipelines" / "digits.yaml")
HEAD, BASE, MAIN = "a" * 40, "b" * 40, "c" * 40
GOOD = {"accuracy": 0.97, "macro_f1": 0.97}


class World:
    def __init__(self, spec: PipelineSpec = SPEC) -> None:
        self.store, self.builder, self.backend = FakeStore(), FakeBuilder(), FakeBackend()
        self.blobs, self.registry, self.notifier = FakeBlobs(), FakeRegistry(), FakeNotifier()
        deps = Deps(
            self.store,
            self.builder,
            self.backend,
            self.blobs,
            self.registry,
            FakeEndpoint(),
            self.notifier,
            lambda: {"digits": spec},
            "/art",
        )
        self.orch = Orchestrator(deps)

    def run(self, run_id: str, **fields: object) -> PipelineRun:
        base = {"kind": "push", "repo": "acme/digits", "sha": MAIN, "ref": "refs/heads/main", "clone_url": "file:///r"}
        trigger = Trigger.model_validate({**base, "delivery_key": run_id, **fields})
        run = PipelineRun(id=run_id, pipeline="digits", trigger=trigger)
        self.store.record_delivery(Delivery(key=run_id, source="github"), [run])
        self.orch.handle(StartRun(run_id=run.id))
        return self.store.runs[run.id]

    def finish(self, run_id: str, step: str) -> PipelineRun:
        job = self.store.runs[run_id].jobs[step]
        self.backend.finish(job)
        self.orch.handle(JobFinished(run_id=run_id, step=step, job_id=job, state="succeeded"))  # type: ignore[arg-type]
        return self.store.runs[run_id]

    def evaluation_of(self, run_id: str) -> JobRequest:
        self.finish(run_id, "train")
        return self.backend.submitted[self.store.runs[run_id].jobs["evaluate"]]


def pull_request(**extra: object) -> dict[str, object]:
    fields = {"kind": "pull_request", "sha": HEAD, "ref": "refs/heads/feature", "pr_number": 7, "base_sha": BASE}
    return {**fields, "head_repo": "acme/digits", "evaluate_only": True, **extra}


def test_a_pull_request_is_evaluated_in_its_base_commits_checkout_not_its_heads() -> None:
    w = World()
    run = w.run("pr-1", **pull_request())
    assert run.state is RunState.TRAINING
    assert w.backend.submitted[run.jobs["train"]].image == f"/images/{HEAD}"  # the candidate trains from its head
    evaluation = w.evaluation_of(run.id)
    assert evaluation.image == f"/images/{BASE}" and evaluation.env["RELAUNCH_EVALUATOR_SHA"] == BASE
    assert evaluation.env["RELAUNCH_CANDIDATE_DIR"] == "/art/runs/pr-1/model"
    assert "pr-1:build-evaluator" in w.builder.builds
    assert w.store.runs[run.id].evaluator_sha == BASE


def test_the_gate_report_names_the_evaluators_commit() -> None:
    w = World()
    run = w.run("pr-1", **pull_request())
    w.evaluation_of(run.id)
    w.blobs.write_eval("/art/runs/pr-1/evaluation", GOOD)
    w.finish(run.id, "evaluate")
    report = next(n.report_markdown for n in w.notifier.sent if n.stage == "gate" and n.report_markdown)
    assert f"evaluator `{BASE}`" in (report or "") and "candidate `aaaaaaa`" in (report or "")


@pytest.mark.parametrize("base_sha", [None, "--orphan=pwned", "B" * 40])
def test_a_pull_request_without_a_valid_base_commit_fails_before_anything_runs(base_sha: str | None) -> None:
    w = World()
    run = w.run("pr-1", **pull_request(base_sha=base_sha))
    assert run.state is RunState.FAILED and "trigger.base_sha" in run.reason
    assert not w.backend.submitted


def test_a_push_with_evaluate_ref_uses_that_refs_evaluator() -> None:
    pinned = SPEC.model_copy(update={"evaluate": SPEC.evaluate.model_copy(update={"ref": "release/eval"})})
    w = World(pinned)
    run = w.run("push-1")
    evaluation = w.evaluation_of(run.id)
    head_of_ref = w.builder.head  # what the fake builder resolves a ref without a commit to
    assert evaluation.image == f"/images/{head_of_ref}" != f"/images/{MAIN}"
    assert w.store.runs[run.id].evaluator_sha == head_of_ref and "push-1:build-evaluator" in w.builder.builds


def test_a_push_without_a_pin_is_evaluated_by_its_own_commit() -> None:
    w = World()
    run = w.run("push-1")
    assert w.evaluation_of(run.id).image == f"/images/{MAIN}" and w.store.runs[run.id].evaluator_sha == MAIN
    assert w.builder.builds == ["push-1:build"]


def test_the_champion_is_handed_as_a_staged_copy_never_the_registrys_folder() -> None:
    w = World()
    champion = w.registry.register("digits", "old", "/registry/digits/v1", {"accuracy": 0.96})
    w.registry.set_champion("digits", champion.version)
    run = w.run("push-1")
    handed = w.evaluation_of(run.id).env["RELAUNCH_CHAMPION_DIR"]
    assert handed == "/art/runs/push-1/inputs/champion-v1" and w.blobs.staged[handed] == "/registry/digits/v1"


def test_evaluate_ref_is_validated_like_any_ref() -> None:
    with pytest.raises(ValueError, match="evaluate.ref"):
        PipelineSpec.model_validate({**SPEC.model_dump(), "evaluate": {"command": ["x"], "ref": "--upload-pack=x"}})
    with pytest.raises(NoEvaluator, match="base_sha"):
        trigger = Trigger.model_validate({**pull_request(base_sha=None), "delivery_key": "d"})
        choose(PipelineRun(id="r", pipeline="digits", trigger=trigger), SPEC)
