"""The orchestrator's handlers, driven with fakes of every port."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaunch.config_files import load_spec
from relaunch.domain.commands import JobFinished, ReportSkip, StartRun
from relaunch.domain.model import Delivery, JobState, JobStep, PipelineRun, RunState, Trigger
from relaunch.service.orchestrator import Deps, Orchestrator, UnknownRun
from tests.fakes import (
    FakeArtifacts,
    FakeBackend,
    FakeBlobs,
    FakeBuilder,
    FakeEndpoint,
    FakeNotifier,
    FakeRegistry,
    FakeStore,
)

SPEC = load_spec(Path(__file__).resolve().parents[2] / "pipelines" / "digits.yaml")
GOOD = {"accuracy": 0.97, "macro_f1": 0.97}


class World:
    def __init__(
        self,
        builder: FakeBuilder | None = None,
        endpoint: FakeEndpoint | None = None,
        notifier: FakeNotifier | None = None,
    ) -> None:
        self.store = FakeStore()
        self.builder = builder or FakeBuilder()
        self.backend = FakeBackend()
        self.blobs = FakeBlobs()
        self.registry = FakeRegistry()
        self.endpoint = endpoint or FakeEndpoint()
        self.notifier = notifier or FakeNotifier()
        self.artifacts = FakeArtifacts({"acme/digits/model:v2": {"reported_metrics": {"accuracy": 0.99}}})
        deps = Deps(
            self.store,
            self.builder,
            self.backend,
            self.blobs,
            self.registry,
            self.endpoint,
            self.notifier,
            lambda: {"digits": SPEC},
            "/art",
            artifacts=lambda: self.artifacts,
        )
        self.orch = Orchestrator(deps)

    def new_run(self, n: int = 1, /, **trigger_fields: object) -> PipelineRun:
        fields = {"kind": "push", "repo": "relaunch-demo/digits", "sha": f"{n:040d}", "clone_url": "file:///repo"}
        trigger = Trigger.model_validate({**fields, "delivery_key": f"d{n}", **trigger_fields})
        run = PipelineRun(id=f"digits-{n}", pipeline="digits", trigger=trigger)
        self.store.record_delivery(Delivery(key=f"d{n}", source="github"), [run])
        return run

    def start(self, run: PipelineRun) -> PipelineRun:
        started = self.orch.handle(StartRun(run_id=run.id))
        assert started is not None
        return started

    def finish(self, run: PipelineRun, step: JobStep, state: JobState = "succeeded", **kw: str) -> PipelineRun:
        job = self.store.runs[run.id].jobs[step]
        self.backend.finish(job, state, **kw)
        finished = self.orch.handle(JobFinished(run_id=run.id, step=step, job_id=job, state=state))
        assert finished is not None
        return finished

    def evaluate(
        self, run: PipelineRun, candidate: dict, champion: dict | None = None, outcomes: dict | None = None
    ) -> PipelineRun:
        self.blobs.write_eval(f"/art/runs/{run.id}/evaluation", candidate, champion, outcomes)
        return self.finish(run, "evaluate")

    def promote(self, n: int, metrics: dict = GOOD, champion: dict | None = None) -> PipelineRun:
        run = self.new_run(n)
        self.start(run)
        self.finish(run, "train")
        return self.evaluate(run, metrics, champion)


def test_push_to_promoted_walks_every_state_and_reports_each_stage() -> None:
    w = World()
    run = w.new_run()
    assert w.start(run).state is RunState.TRAINING
    request = w.backend.submitted[w.store.runs[run.id].jobs["train"]]
    assert request.output_dir == "/art/runs/digits-1" and not [k for k in request.env if k.startswith("AIP_")]
    assert request.env["RELAUNCH_COMMIT_SHA"] == run.trigger.sha and request.image == f"/images/{run.trigger.sha}"
    assert w.finish(run, "train").state is RunState.EVALUATING
    assert w.backend.submitted[w.store.runs[run.id].jobs["evaluate"]].env["RELAUNCH_CHAMPION_DIR"] == ""
    done = w.evaluate(run, GOOD)
    assert done.state is RunState.PROMOTED and done.model_version == "v1"
    assert w.registry.champions["digits"] == "v1" and w.endpoint.deployed["digits"] == {"v1": 100}
    states = [e.data["to"] for e in w.store.timeline(run.id) if e.kind == "state" and e.data]
    assert states == ["received", "building", "training", "evaluating", "gated", "rolling_out", "promoted"]
    sent = [(n.stage, n.state) for n in w.notifier.sent]
    assert sent == [
        ("build", "pending"),
        ("build", "success"),
        ("train", "pending"),
        ("train", "success"),
        ("gate", "pending"),
        ("gate", "success"),
        ("deploy", "pending"),
        ("deploy", "success"),
    ]
    assert "relaunch gate: ✅ promote" in (w.notifier.sent[5].report_markdown or "")


def test_worse_candidate_is_rejected_with_reasons_and_champion_keeps_serving() -> None:
    w = World()
    w.promote(1)
    run = w.new_run(2)
    w.start(run)
    w.finish(run, "train")
    champion_dir = w.backend.submitted[w.store.runs[run.id].jobs["evaluate"]].env["RELAUNCH_CHAMPION_DIR"]
    assert champion_dir == "/art/runs/digits-2/inputs/champion-v1"  # a copy staged in its own run's folder
    assert w.blobs.staged[champion_dir] == "/art/registry/digits/digits-1/model"  # the registry copy, never runs/
    done = w.evaluate(run, {"accuracy": 0.80, "macro_f1": 0.79}, GOOD)
    assert done.state is RunState.REJECTED
    assert "accuracy 0.8000 < floor 0.9000" in done.reason and "regression 0.1700 exceeds limit" in done.reason
    assert w.endpoint.deployed["digits"] == {"v1": 100} and w.registry.champions["digits"] == "v1"
    assert [n.state for n in w.notifier.sent if n.stage == "gate"][-1] == "failure"


def test_second_promotion_replaces_the_champion_and_undeploys_it() -> None:
    w = World()
    w.promote(1)
    done = w.promote(2, {"accuracy": 0.975, "macro_f1": 0.975}, GOOD)
    assert done.state is RunState.PROMOTED and done.model_version == "v2"
    assert w.endpoint.deployed["digits"] == {"v2": 100}
    assert ("undeploy", "digits", "v1") in w.endpoint.calls


def test_redelivered_commands_repeat_no_side_effect() -> None:
    w = World()
    run = w.new_run()
    w.start(run)
    w.start(run)
    w.finish(run, "train")
    w.finish(run, "train")
    w.evaluate(run, GOOD)
    w.orch.handle(JobFinished(run_id=run.id, step="evaluate", job_id="x", state="succeeded"))
    assert len(w.backend.submitted) == 2 and len(w.builder.builds) == 1
    assert [c[0] for c in w.endpoint.calls].count("deploy") == 1
    assert len(w.notifier.sent) == 8


def test_code_error_fails_the_run_with_the_log_tail() -> None:
    w = World()
    run = w.new_run()
    w.start(run)
    done = w.finish(run, "train", "failed", message="exit code 1 (code error)", log_tail="ValueError: boom")
    assert done.state is RunState.FAILED and "exit code 1" in done.reason
    assert any(e.data.get("tail") == "ValueError: boom" for e in w.store.timeline(run.id))
    assert (w.notifier.sent[-1].stage, w.notifier.sent[-1].state) == ("train", "failure")


def test_a_pending_build_waits_and_records_the_build_id() -> None:
    w = World(builder=FakeBuilder(pending=True))
    run = w.new_run()
    waiting = w.start(run)
    assert waiting.state is RunState.BUILDING and waiting.build_id == "b-digits-1"
    assert w.backend.submitted == {}


def test_a_bad_checkout_fails_the_run() -> None:
    w = World(builder=FakeBuilder(error="unknown commit"))
    assert w.start(w.new_run()).state is RunState.FAILED


def test_unusable_evaluation_output_fails_the_run() -> None:
    w = World()
    run = w.new_run()
    w.start(run)
    w.finish(run, "train")
    done = w.finish(run, "evaluate")  # no metrics.json written
    assert done.state is RunState.FAILED and "evaluation output unusable" in done.reason


def test_refused_deploy_fails_the_run_and_keeps_no_champion() -> None:
    w = World(endpoint=FakeEndpoint(refuse="bad model"))
    done = w.promote(1)
    assert done.state is RunState.FAILED and "bad model" in done.reason
    assert "digits" not in w.registry.champions


def test_failing_notifier_never_blocks_a_promotion() -> None:
    w = World(notifier=FakeNotifier(fail=True))
    assert w.promote(1).state is RunState.PROMOTED


def test_unknown_run_is_a_permanent_error() -> None:
    with pytest.raises(UnknownRun):
        World().orch.handle(StartRun(run_id="nope"))


def test_champion_changed_since_evaluation_is_rejected_not_promoted() -> None:
    w = World()
    run = w.new_run(1)
    w.start(run)
    w.finish(run, "train")
    w.promote(2)  # another run becomes champion while run 1 evaluates against "no champion"
    done = w.evaluate(run, GOOD)
    assert done.state is RunState.REJECTED and "champion changed" in done.reason
    [note] = [n for n in w.notifier.sent if n.run_id == run.id and n.stage == "deploy"]
    assert note.state == "failure" and "champion changed" in note.description
    assert w.endpoint.deployed["digits"] == {"v1": 100}


def test_a_skip_report_posts_a_success_status_on_the_commit_once() -> None:
    w = World()
    skip = ReportSkip(
        run_id="digits-x", pipeline="digits", repo="a/b", sha="c" * 40, description="skipped: no watched path changed"
    )
    assert w.orch.handle(skip) is None
    w.orch.handle(skip)
    [note] = w.notifier.sent
    assert (note.sha, note.stage, note.state, note.description) == ("c" * 40, "gate", "success", skip.description)


def test_a_run_without_a_commit_records_the_one_its_build_resolved() -> None:
    w = World(builder=FakeBuilder(head="e" * 40))
    run = w.new_run(kind="manual", sha=None, ref="refs/heads/main")
    started = w.start(run)
    assert started.state is RunState.TRAINING and started.trigger.sha == "e" * 40
    assert w.backend.submitted[started.jobs["train"]].env["RELAUNCH_COMMIT_SHA"] == "e" * 40
    assert any("resolved to" in e.message for e in w.store.timeline(run.id))


def test_a_pull_request_run_is_gated_but_never_promoted_and_reports_on_its_head() -> None:
    w = World()
    # A pull request names its base commit, where its evaluator runs (see test_evaluator_isolation)
    pr = {"kind": "pull_request", "evaluate_only": True, "head_repo": "relaunch-demo/digits", "base_sha": "b" * 40}
    run = w.new_run(sha="a" * 40, **pr)
    w.start(run)
    w.finish(run, "train")
    done = w.evaluate(run, GOOD)
    assert done.state is RunState.EVALUATED and done.reason == "gate passed (evaluation only: not promoted)"
    assert w.endpoint.calls == [] and "digits" not in w.registry.champions
    assert {n.sha for n in w.notifier.sent} == {"a" * 40}
    assert ("gate", "success") in [(n.stage, n.state) for n in w.notifier.sent]


def test_a_wandb_run_fetches_evaluates_promotes_and_moves_the_alias() -> None:
    w = World()
    run = w.new_run(kind="wandb", sha=None, ref="refs/heads/main", artifact="acme/digits/model:v2")
    started = w.start(run)
    assert started.state is RunState.EVALUATING and "train" not in started.jobs
    assert w.artifacts.fetched == [("acme/digits/model:v2", f"/art/runs/{run.id}/model")]
    request = w.backend.submitted[started.jobs["evaluate"]]
    assert (
        request.env["RELAUNCH_CANDIDATE_DIR"] == f"/art/runs/{run.id}/model" and request.image == f"/images/{'f' * 40}"
    )
    done = w.evaluate(run, GOOD)
    assert done.state is RunState.PROMOTED and w.artifacts.aliases == {"production": "acme/digits/model:v2"}
    states = [e.data["to"] for e in w.store.timeline(run.id) if e.kind == "state" and e.data]
    assert states == ["received", "building", "evaluating", "gated", "rolling_out", "promoted"]
    assert any(e.data.get("reported_metrics") == {"accuracy": 0.99} for e in w.store.timeline(run.id))


def test_a_wandb_run_of_a_missing_artifact_fails() -> None:
    w = World()
    run = w.new_run(kind="wandb", sha=None, ref="refs/heads/main", artifact="acme/digits/model:v9")
    done = w.start(run)
    assert done.state is RunState.FAILED and "acme/digits/model:v9" in done.reason and w.backend.submitted == {}


def test_a_canary_waits_in_rolling_out_and_moves_the_wandb_alias_only_once_promoted() -> None:
    from relaunch.domain.rollout import CanaryRollout

    w = World()
    w.promote(1)
    w.orch.d.specs = lambda: {"digits": SPEC.model_copy(update={"rollout": CanaryRollout(bake_s=60)})}
    run = w.new_run(2, kind="wandb", artifact="acme/digits/model:v2", sha=None)
    w.start(run)
    waiting = w.evaluate(run, GOOD, GOOD)
    assert waiting.state is RunState.ROLLING_OUT and waiting.rollout is not None
    assert waiting.rollout.phase == "baking" and w.artifacts.aliases == {}
    assert w.registry.champions["digits"] == "v1"
