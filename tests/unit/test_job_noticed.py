"""A JobNoticed command (a Vertex job logged something) carries no state: the orchestrator reads the job's own."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from relaunch.domain.commands import JobNoticed, parse_command
from relaunch.domain.model import RunState
from tests.unit.test_orchestrator import World


def test_a_notice_of_a_running_job_leaves_the_run_waiting() -> None:
    w = World()
    run = w.start(w.new_run())
    job = w.store.runs[run.id].jobs["train"]
    noticed = w.orch.handle(JobNoticed(run_id=run.id, job_id=job))
    assert noticed is not None and noticed.state is RunState.TRAINING


def test_a_notice_of_a_finished_job_moves_the_run_to_the_next_stage() -> None:
    w = World()
    run = w.start(w.new_run())
    job = w.store.runs[run.id].jobs["train"]
    w.backend.finish(job, "succeeded")
    moved = w.orch.handle(JobNoticed(run_id=run.id, job_id=job))
    assert moved is not None and moved.state is RunState.EVALUATING and "evaluate" in moved.jobs


def test_the_command_travels_as_json_and_refuses_extra_fields() -> None:
    command = JobNoticed(run_id="r-1", job_id="5386271923948961792")
    assert parse_command(command.model_dump()) == command
    with pytest.raises(ValidationError, match="state"):
        parse_command({**command.model_dump(), "state": "succeeded"})
