"""The agent and the completion relay wake on events: a submit, a job's exit, a recorded end, not their next poll.

Every agent and relay here polls only every 5 s, so each step taking well under a second shows the wake-up worked.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from relaunch.adapters.local.agent import LocalAgent
from relaunch.adapters.local.agent_process import CompletionRelay
from relaunch.domain.model import JobRequest, JobStatus

SLOW_POLL_S = 5.0
PROMPT_S = 1.0  # far below a poll interval: only a wake-up explains it


def job(workdir: Path, key: str, code: str) -> JobRequest:
    return JobRequest(key=key, run_id="run-1", step="train", image=str(workdir), command=["python", "-c", code])


class Stack:
    """An agent running `run_forever` (as in its process), a relay, and a submitter: three instances, one table."""

    def __init__(self, tmp_path: Path) -> None:
        self.db, self.logs = tmp_path / "agent.db", tmp_path / "logs"
        self.delivered: list[tuple[float, JobStatus]] = []
        self.stopped = False
        self.agent = LocalAgent(self.db, self.logs, poll_interval=SLOW_POLL_S)
        self.submitter = LocalAgent(self.db, self.logs, poll_interval=SLOW_POLL_S)
        relayed = LocalAgent(self.db, self.logs, poll_interval=SLOW_POLL_S)
        relayed.on_finished = lambda request, status: self.delivered.append((time.monotonic(), status))
        self.relay = CompletionRelay(relayed)
        self._thread = threading.Thread(target=self.agent.run_forever, args=(lambda: self.stopped,), daemon=True)

    def start(self) -> None:
        self.relay.start()
        self._thread.start()
        time.sleep(0.5)  # both are asleep in their first wait now

    def stop(self) -> None:
        self.stopped = True
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as wake:  # so the test does not wait out a poll
            try:
                wake.sendto(b"!", str(self.db.with_suffix(".wake")))
            except OSError:
                pass
        self._thread.join(timeout=SLOW_POLL_S + 5)
        self.relay.stop()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    made = Stack(tmp_path)
    made.start()
    yield made
    made.stop()


def wait_until(condition: object, timeout: float) -> float:
    """Seconds until `condition()` held, or pytest.fail after `timeout`."""
    start = time.monotonic()
    while not condition():  # type: ignore[operator]
        if time.monotonic() - start > timeout:
            pytest.fail(f"not within {timeout:g} s (the agent polls every {SLOW_POLL_S:g} s)")
        time.sleep(0.005)
    return time.monotonic() - start


def test_a_submit_launches_at_once_and_an_exit_is_reaped_and_relayed_at_once(stack: Stack, tmp_path: Path) -> None:
    job_id = stack.submitter.submit(job(tmp_path, "k", "import time; time.sleep(0.3)"))
    wait_until(lambda: stack.submitter.status(job_id).state != "queued", PROMPT_S)
    wait_until(lambda: stack.submitter.status(job_id).done, 0.3 + PROMPT_S)
    finished = stack.submitter.status(job_id)
    assert finished.state == "succeeded"
    assert finished.finished_at is not None and finished.started_at is not None
    assert finished.finished_at - finished.started_at < 0.3 + PROMPT_S  # reaped on the exit, not the next poll
    wait_until(lambda: stack.delivered, PROMPT_S)
    assert [status.id for _, status in stack.delivered] == [job_id]


def test_back_to_back_jobs_each_wake_the_agent(stack: Stack, tmp_path: Path) -> None:
    for n in range(1, 4):
        job_id = stack.submitter.submit(job(tmp_path, f"k{n}", "pass"))
        wait_until(lambda job_id=job_id: stack.submitter.status(job_id).done, 2 * PROMPT_S)
        wait_until(lambda n=n: len(stack.delivered) == n, PROMPT_S)


def test_a_stale_socket_from_a_killed_agent_does_not_stop_a_restart(tmp_path: Path) -> None:
    for suffix in (".wake", ".done"):  # bound and never unlinked: what a SIGKILLed stack leaves
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        stale.bind(str((tmp_path / "agent.db").with_suffix(suffix)))
        stale.close()
    made = Stack(tmp_path)
    made.start()
    try:
        job_id = made.submitter.submit(job(tmp_path, "k", "pass"))
        wait_until(lambda: made.delivered, 2 * PROMPT_S)
        assert made.delivered[0][1].id == job_id
    finally:
        made.stop()
