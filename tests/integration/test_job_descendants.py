"""Every process a job starts ends with the job, or with the agent that ran it, even one that left the job's process
group (setsid) or was orphaned (a shell's background child): the job's supervisor adopts them (a child subreaper)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from relaunch.adapters.local.agent import LocalAgent
from relaunch.domain.model import JobRequest

DEADLINE_S = 20.0


def wait_for(condition: Callable[[], bool], what: str, timeout: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def sleepers(seconds: str) -> list[int]:
    """Live processes whose command line is exactly `sleep SECONDS` (a duration unique to the test)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")[:-1]
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if argv == [b"sleep", seconds.encode()] and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.fixture
def duration() -> Iterator[str]:
    """A sleep duration no other test uses; whatever sleeps that long at the end is killed (and failed on)."""
    seconds = f"{random.randint(3000, 3999)}.{random.randint(0, 999999):06d}"
    yield seconds
    for pid in sleepers(seconds):
        os.kill(pid, signal.SIGKILL)


def shell_job(workdir: Path, key: str, script: str, **fields: object) -> JobRequest:
    return JobRequest(key=key, run_id="run-1", step="train", image=str(workdir), command=["sh", "-c", script], **fields)  # type: ignore[arg-type]


LEAVES = "sleep {d} & setsid sleep {d} & (sleep {d} &) ; "  # a background child, a new session, an orphan


def test_what_a_job_leaves_running_ends_with_it(tmp_path: Path, duration: str) -> None:
    agent = LocalAgent(tmp_path / "agent.db", tmp_path / "logs", poll_interval=0.02)
    agent.start()
    try:
        job_id = agent.submit(shell_job(tmp_path, "k-1", LEAVES.format(d=duration) + "sleep 0.5; exit 3"))
        wait_for(lambda: len(sleepers(duration)) == 3, "the job's three sleepers")
        wait_for(lambda: agent.status(job_id).done, "the job to end")
        assert agent.status(job_id).message == "exited with code 3"  # the job's own status, not its supervisor's
        wait_for(lambda: not sleepers(duration), "the sleepers to end with the job", 5)
    finally:
        agent.stop()


def test_a_job_that_times_out_takes_what_it_started_down(tmp_path: Path, duration: str) -> None:
    agent = LocalAgent(tmp_path / "agent.db", tmp_path / "logs", poll_interval=0.02)
    agent.start()
    try:
        job_id = agent.submit(shell_job(tmp_path, "k-2", LEAVES.format(d=duration) + "sleep 60", timeout_s=1))
        wait_for(lambda: agent.status(job_id).done, "the job to time out")
        assert agent.status(job_id).message == "timed out after 1s"
        wait_for(lambda: not sleepers(duration), "the sleepers to end with the job", 5)
    finally:
        agent.stop()


def test_kill9_of_the_agent_leaves_nothing_the_job_started(tmp_path: Path, duration: str) -> None:
    """No restart needed: the supervisor outlives the agent just long enough to end the job's whole tree."""
    request = shell_job(tmp_path, "k-3", LEAVES.format(d=duration) + "sleep 60")
    script = (
        "import sys, time; from pathlib import Path; from relaunch.adapters.local.agent import LocalAgent;"
        "from relaunch.domain.model import JobRequest;"
        "a = LocalAgent(Path(sys.argv[1]), Path(sys.argv[2]), poll_interval=0.02);"
        "a.submit(JobRequest.model_validate_json(sys.argv[3])); a.start(); time.sleep(120)"
    )
    argv = [sys.executable, "-c", script, str(tmp_path / "agent.db"), str(tmp_path / "logs"), request.model_dump_json()]
    host = subprocess.Popen(argv, start_new_session=True)
    try:
        wait_for(lambda: len(sleepers(duration)) == 3, "the job's three sleepers")
        os.kill(host.pid, signal.SIGKILL)
        host.wait(timeout=10)
        wait_for(lambda: not sleepers(duration), "the sleepers to end with the agent", 10)
    finally:
        if host.poll() is None:
            os.killpg(host.pid, signal.SIGKILL)
            host.wait(timeout=10)
