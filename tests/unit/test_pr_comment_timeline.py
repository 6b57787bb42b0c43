"""The embedded profile records the pull request comment it would post, and the gate's notification carries it."""

from __future__ import annotations

from relaunch.adapters.local.notifier import TimelineNotifier
from relaunch.domain.gate import decide
from relaunch.domain.model import PipelineRun, Scores, Trigger
from relaunch.domain.pr_report import marker
from relaunch.domain.spec import GatePolicy
from relaunch.service.notices import status_note
from tests.fakes import FakeStore

SHA = "9f3c1d2e4b5a69788796a5b4c3d2e1f001234567"


def pr_run() -> PipelineRun:
    trigger = Trigger(
        kind="pull_request", delivery_key="d-1", repo="relaunch-demo/digits", sha=SHA, evaluate_only=True, pr_number=12
    )
    made = decide(Scores(metrics={"accuracy": 0.93}), Scores(metrics={"accuracy": 0.91}), GatePolicy(), "v3")
    return PipelineRun(id="run-42", pipeline="digits", trigger=trigger, decision=made)


def test_the_gate_verdict_of_a_pull_request_run_carries_its_number_and_decision() -> None:
    run = pr_run()
    note = status_note(run, "gate", "success", "Gate passed", endpoint=None, model_version=None)
    assert note.pr_number == 12 and note.decision == run.decision
    later = status_note(run, "deploy", "success", "v3 serves", endpoint="digits", model_version="v3")
    assert later.decision is None  # only the gate's verdict reports the decision


def test_the_timeline_records_the_comment_the_pull_request_would_get() -> None:
    store = FakeStore()
    note = status_note(pr_run(), "gate", "success", "Gate passed", endpoint=None, model_version=None)
    TimelineNotifier(store, public_url="http://127.0.0.1:8080").notify(note)

    [entry] = [e for e in store.timeline("run-42") if e.kind == "github.pr_comment"]
    assert entry.message == "pull request #12 report comment (gate passed)"
    assert entry.data["issue_number"] == 12 and entry.data["repo"] == "relaunch-demo/digits"
    assert entry.data["body"].startswith(marker("digits")) and "http://127.0.0.1:8080/runs/run-42" in entry.data["body"]


def test_a_pull_request_run_through_the_orchestrator_reports_its_verdict_as_a_comment() -> None:
    from relaunch.domain.pr_report import comment_body
    from tests.unit.test_evaluated_runs import PR
    from tests.unit.test_orchestrator import GOOD, World

    w = World()
    run = w.new_run(7, sha="a" * 40, pr_number=12, **PR)
    w.start(run)
    w.finish(run, "train")
    w.evaluate(run, GOOD, None)
    [verdict] = [n for n in w.notifier.sent if n.stage == "gate" and n.state != "pending"]
    body = comment_body(verdict, None)
    assert verdict.pr_number == 12 and body is not None and "`aaaaaaa`" in body and "gate passed" in body
    assert not [n for n in w.notifier.sent if n.stage == "gate" and n.state == "pending" and comment_body(n, None)]
