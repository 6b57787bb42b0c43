"""TRAINING failures wired end to end with fakes: infrastructure retried with backoff, code errors fail fast."""

from __future__ import annotations

import time

import pytest

from relaunch.domain.commands import JobFinished
from relaunch.domain.model import RunState
from tests.unit.test_orchestrator import World

S = RunState
TAIL = "epoch 1\nTraceback (most recent call last):\nKeyError: 'label'"


def test_infrastructure_failure_is_retried_under_a_new_key_after_a_backoff_then_fails_for_good() -> None:
    w = World()
    run = w.new_run(1)
    w.start(run)
    before = time.time()
    retried = w.finish(run, "train", "failed", message="killed by signal SIGKILL")

    assert retried.state is S.TRAINING and retried.attempt == 2
    job = retried.jobs["train"]
    request = w.backend.submitted[job]
    assert request.key == f"{run.id}:train:2" and request.command == ["python", "train.py"]
    assert retried.retry_at is not None and request.not_before == retried.retry_at
    assert before + 15 <= retried.retry_at <= time.time() + 30  # retry_delay(1): 15..30 s
    assert retried.stage_durations["train"] == pytest.approx(2.0)
    assert any("attempt 2" in e.message for e in w.store.timeline(run.id))

    stale = JobFinished(run_id=run.id, step="train", job_id=f"job-{run.id}:train", state="failed")
    handled = w.orch.handle(stale)
    assert handled is not None
    assert handled.version == retried.version  # the first attempt's redelivered event changes nothing

    failed = w.finish(run, "train", "failed", message="The replica workerpool0-0 was preempted")
    assert failed.state is S.FAILED and "after 2 attempts" in failed.reason and "preempted" in failed.reason
    assert failed.stage_durations["train"] == pytest.approx(4.0)
    assert len(w.backend.submitted) == 2
    assert w.store.get_effect(run.id, "cost")["train_s"] == pytest.approx(4.0)  # type: ignore[index]


def test_code_error_fails_fast_with_the_log_tail_in_the_report() -> None:
    w = World()
    run = w.new_run(1)
    w.start(run)
    failed = w.finish(run, "train", "failed", message="exited with code 1", log_tail=TAIL)
    assert failed.state is S.FAILED and len(w.backend.submitted) == 1
    assert "code: error" in failed.reason and "KeyError: 'label'" in failed.reason
    [note] = [n for n in w.notifier.sent if n.stage == "train" and n.state == "failure"]
    assert "KeyError: 'label'" in note.description
    assert note.report_markdown is not None and "Traceback (most recent call last):" in note.report_markdown


def test_out_of_memory_is_a_code_error_even_when_killed() -> None:
    w = World()
    run = w.new_run(1)
    w.start(run)
    failed = w.finish(run, "train", "failed", message="killed by signal SIGKILL", log_tail="MemoryError")
    assert failed.state is S.FAILED and "out of memory" in failed.reason


def test_a_retry_that_succeeds_counts_both_attempts_and_goes_on_to_evaluate() -> None:
    w = World()
    run = w.new_run(1)
    w.start(run)
    w.finish(run, "train", "failed", message="the agent restarted while the job was running")
    moved = w.finish(run, "train")
    assert moved.state is S.EVALUATING and moved.retry_at is None
    assert moved.stage_durations["train"] == pytest.approx(4.0)


def test_an_evaluation_cut_off_by_infrastructure_is_retried_and_a_code_error_fails_the_gate() -> None:
    w = World()
    run = w.new_run(1)
    w.start(run)
    w.finish(run, "train")
    retried = w.finish(run, "evaluate", "failed", message="the agent restarted while the job was running")
    assert retried.state is S.EVALUATING and (retried.attempt, retried.eval_attempt) == (1, 2)
    request = w.backend.submitted[retried.jobs["evaluate"]]
    assert request.key == f"{run.id}:evaluate:2" and request.not_before == retried.retry_at
    assert any("evaluation attempt 1 failed" in e.message for e in w.store.timeline(run.id))

    failed = w.finish(run, "evaluate", "failed", message="exited with code 2", log_tail=TAIL)
    assert failed.state is S.FAILED and failed.reason.startswith("evaluation failed after 2 attempts (code")
    [note] = [n for n in w.notifier.sent if n.stage == "gate" and n.state == "failure"]
    assert note.report_markdown is not None and note.report_markdown.startswith("### Evaluation failed")


def test_the_retry_time_is_the_same_however_often_the_failure_is_handled() -> None:
    """A backend that refuses a job before it is due (Vertex) must see the same due time on every redelivery."""
    from relaunch.domain.model import JobStatus
    from relaunch.domain.ports import TransientError
    from relaunch.service.retry_step import Retrier
    from tests.unit.test_orchestrator import SPEC

    w = World()
    run = w.new_run(1)
    w.start(run)
    training = w.store.runs[run.id]
    failed = JobStatus(id="j", state="failed", message="killed by signal SIGKILL", started_at=990.0, finished_at=1000.0)
    asked: list[float | None] = []

    class NotYet:  # refuses every submission, as Vertex does before `not_before`
        def submit(self, request):  # type: ignore[no-untyped-def]
            asked.append(request.not_before)
            raise TransientError("not due")

    retrier = Retrier(w.store, NotYet(), w.orch._fail, clock=lambda: 5000.0)  # type: ignore[arg-type]
    first = w.backend.submitted[training.jobs["train"]]
    for _ in range(3):  # the redelivered JobFinished, then two reconcile ticks
        with pytest.raises(TransientError):
            retrier.failed(training, SPEC, failed, first)
    assert len(set(asked)) == 1 and asked[0] is not None and 1015.0 <= asked[0] < 1030.0  # finished_at + 15..30 s
