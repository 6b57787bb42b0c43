"""The demo's narration: progress lines that say what a job is doing, and a spinner only on a terminal."""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass, field
from typing import Any

from relaunch.demo import Narrator
from relaunch.domain.model import JobStatus, PipelineRun, RunState, TimelineEntry, Trigger

TRIGGER = Trigger(kind="push", delivery_key="k")
RUN = PipelineRun(id="r1", pipeline="digits", trigger=TRIGGER, state=RunState.TRAINING, jobs={"train": "j"})


@dataclass
class FakeStore:
    runs: list[PipelineRun]
    timelines: dict[str, list[TimelineEntry]] = field(default_factory=dict)

    def get_run(self, run_id: str) -> PipelineRun | None:
        return self.runs.pop(0) if len(self.runs) > 1 else self.runs[0]

    def timeline(self, run_id: str) -> list[TimelineEntry]:
        return self.timelines.get(run_id, [])


@dataclass
class FakeBackend:
    status_of: JobStatus
    streams: list[tuple[object, object]] = field(default_factory=list)

    def status(self, job_id: str) -> JobStatus:
        self.streams.append((sys.stdout, sys.stderr))  # what a job started now would inherit
        return self.status_of


@dataclass
class FakeApp:
    store: FakeStore
    backend: FakeBackend

    @property
    def training(self) -> FakeBackend:
        """What the orchestrator trains with (App.training): the narrator asks it, so a sweep's id is known too."""
        return self.backend


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as a person's would."""

    def isatty(self) -> bool:
        return True


def narrate(status: JobStatus, out: io.StringIO) -> FakeBackend:
    done = RUN.model_copy(update={"state": RunState.PROMOTED})
    backend = FakeBackend(status)
    app: Any = FakeApp(FakeStore([RUN, done]), backend)
    Narrator(app, out).follow("r1", timeout=10)
    return backend


def test_a_queued_job_says_queued_with_no_negative_time() -> None:
    out = io.StringIO()
    narrate(JobStatus(id="j", state="queued"), out)
    assert "train job queued" in out.getvalue() and "-0.0s" not in out.getvalue(), out.getvalue()


def test_a_running_job_says_how_long_and_its_last_log_line() -> None:
    out = io.StringIO()
    narrate(JobStatus(id="j", state="running", started_at=1.0, log_tail="epoch 1\nepoch 2\n"), out)
    line = next(ln for ln in out.getvalue().splitlines() if "train job running" in ln)
    assert line.endswith("— epoch 2") and "s —" in line


def test_progress_is_a_spinner_on_a_terminal_and_lines_elsewhere() -> None:
    piped, tty = io.StringIO(), Terminal()
    narrate(JobStatus(id="j", state="running", started_at=1.0, log_tail="epoch 2\n"), piped)
    backend = narrate(JobStatus(id="j", state="running", started_at=1.0, log_tail="epoch 2\n"), tty)
    assert "\x1b[" not in piped.getvalue() and "train job running" in piped.getvalue()
    assert "\x1b[?25l" in tty.getvalue()  # the spinner hid the cursor while it ran
    assert "\x1b[?25h" in tty.getvalue()  # and showed it again when the run ended
    # the embedded stack runs in this process: its job runner must keep the real streams while the spinner turns
    assert backend.streams == [(sys.stdout, sys.stderr)]
