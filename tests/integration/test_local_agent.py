"""LocalAgent against real subprocesses: queue order, concurrency, failure classes, restarts, notifications."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from relaunch.adapters.local.agent import LocalAgent
from relaunch.domain.failures import classify
from relaunch.domain.model import JobRequest, JobStatus

DEADLINE_S = 20.0


def wait_for(condition: Callable[[], bool], what: str, timeout: float = DEADLINE_S) -> None:
    """Poll until `condition` holds; fail the test after a generous deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def job(workdir: Path, key: str, code: str, **fields: object) -> JobRequest:
    """A `python -c` job run in `workdir`."""
    command = ["python", "-c", textwrap.dedent(code)]
    return JobRequest(key=key, run_id="run-1", step="train", image=str(workdir), command=command, **fields)  # type: ignore[arg-type]


def done(agent: LocalAgent, job_id: str) -> Callable[[], bool]:
    return lambda: agent.status(job_id).done


class Agents:
    """Builds agents on one database and stops every one that was started."""

    def __init__(self, tmp_path: Path) -> None:
        self.db, self.logs = tmp_path / "agent.db", tmp_path / "logs"
        self.started: list[LocalAgent] = []

    def new(self, *, start: bool = True, **kwargs: object) -> LocalAgent:
        agent = LocalAgent(self.db, self.logs, poll_interval=0.02, **kwargs)  # type: ignore[arg-type]
        if start:
            agent.start()
            self.started.append(agent)
        return agent


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[Agents]:
    made = Agents(tmp_path)
    yield made
    for agent in made.started:
        agent.stop()


def test_submit_is_idempotent_and_works_from_another_process(agents: Agents, tmp_path: Path) -> None:
    agent = agents.new(start=False)
    request = job(tmp_path, "run-1/train", "print('hi')")
    job_id = agent.submit(request)
    assert agent.submit(request) == job_id
    assert [status.id for _, status in agent.list_jobs()] == [job_id]
    assert agent.status(job_id).state == "queued"
    with pytest.raises(KeyError):
        agent.status("job-unknown")

    other = job(tmp_path, "run-2/train", "print('from another process')")
    script = (
        "import sys; from pathlib import Path; from relaunch.adapters.local.agent import LocalAgent;"
        "from relaunch.domain.model import JobRequest;"
        "print(LocalAgent(Path(sys.argv[1]), Path(sys.argv[2])).submit(JobRequest.model_validate_json(sys.argv[3])))"
    )
    argv = [sys.executable, "-c", script, str(agents.db), str(agents.logs), other.model_dump_json()]
    other_id = subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()
    agent.start()
    agents.started.append(agent)
    wait_for(lambda: all(agent.status(i).state == "succeeded" for i in (job_id, other_id)), "both jobs")
    assert "from another process" in agent.status(other_id).log_tail


def test_priority_order_and_max_concurrent(agents: Agents, tmp_path: Path) -> None:
    agent = agents.new(start=False, max_concurrent=2)
    code = """
        import sys, time
        with open('marks.txt', 'a') as f: f.write(f'start {time.time()}\\n')
        time.sleep(0.2)
        with open('marks.txt', 'a') as f: f.write(f'end {time.time()}\\n')
    """
    priorities = {"a": 0, "b": 0, "c": 5, "d": 5, "e": 1}
    ids = {name: agent.submit(job(tmp_path, name, code, priority=p)) for name, p in priorities.items()}
    agent.start()
    agents.started.append(agent)
    wait_for(lambda: all(agent.status(i).state == "succeeded" for i in ids.values()), "all jobs")

    started = sorted(ids, key=lambda name: agent.status(ids[name]).started_at or 0)
    assert started == ["c", "d", "e", "a", "b"]
    events = sorted((float(t), kind) for kind, t in (line.split() for line in (tmp_path / "marks.txt").open()))
    running, most = 0, 0
    for _, kind in events:
        running += 1 if kind == "start" else -1
        most = max(most, running)
    assert most <= 2


def test_code_error_fails_fast_with_log_tail(agents: Agents, tmp_path: Path) -> None:
    agent = agents.new()
    code = "import sys; print('loading data'); print('boom: bad param', file=sys.stderr); sys.exit(3)"
    job_id = agent.submit(job(tmp_path, "k", code, max_retries=3))
    wait_for(done(agent, job_id), "the job to fail")
    status = agent.status(job_id)
    assert (status.state, status.attempts) == ("failed", 1)
    assert status.message == "exited with code 3"
    assert "boom: bad param" in status.log_tail and "loading data" in status.log_tail
    assert classify(status).kind == "code"


def test_signal_killed_job_fails_once_with_the_fact_and_the_policy_calls_it_infrastructure(
    agents: Agents, tmp_path: Path
) -> None:
    agent = agents.new()
    code = "import os, signal; open('tries', 'a').write('x'); os.kill(os.getpid(), signal.SIGKILL)"
    job_id = agent.submit(job(tmp_path, "k", code, max_retries=2))  # the agent no longer retries on its own
    wait_for(done(agent, job_id), "the job")

    status = agent.status(job_id)
    assert (status.state, status.attempts, status.message) == ("failed", 1, "killed by signal SIGKILL")
    assert (tmp_path / "tries").read_text() == "x"
    failure = classify(status)
    assert (failure.kind, failure.cause) == ("infrastructure", "agent")


def test_not_before_holds_a_queued_job_until_its_time(agents: Agents, tmp_path: Path) -> None:
    agent = agents.new(start=False)
    later = agent.submit(job(tmp_path, "retry", "print('later')", not_before=time.time() + 3600, priority=9))
    now = agent.submit(job(tmp_path, "now", "print('now')"))
    agent.start()
    agents.started.append(agent)
    wait_for(done(agent, now), "the job that may start now")
    assert agent.status(later).state == "queued"  # higher priority, but its time has not come
    agent.jobs.insert("job-other", job(tmp_path, "soon", "print('soon')", not_before=time.time() - 1))
    wait_for(done(agent, "job-other"), "a job whose time has passed")
    assert agent.status(later).state == "queued"


def test_restart_fails_a_job_left_running_as_an_infrastructure_fact(agents: Agents, tmp_path: Path) -> None:
    first = agents.new()
    code = """
        import os, time
        if not os.path.exists('first-attempt'):
            open('first-attempt', 'w').close()
            time.sleep(60)
    """
    job_id = first.submit(job(tmp_path, "k", code, max_retries=1))
    once_id = first.submit(job(tmp_path, "once", "import time; time.sleep(60)", max_retries=0))
    wait_for(lambda: first.status(job_id).state == "running" and first.status(once_id).state == "running", "running")
    wait_for((tmp_path / "first-attempt").exists, "the first attempt to begin")
    first.stop()
    assert first.status(job_id).state == "running"

    second = agents.new()
    wait_for(lambda: second.status(job_id).done and second.status(once_id).done, "both jobs to be reported")
    for interrupted in (second.status(job_id), second.status(once_id)):
        assert (interrupted.state, interrupted.attempts) == ("failed", 1)
        assert interrupted.message == "the agent restarted while the job was running"
        assert classify(interrupted).kind == "infrastructure"
    assert second.log_path(job_id).read_text().count("--- attempt") == 1


def test_timeout_kills_the_process_group(agents: Agents, tmp_path: Path) -> None:
    agent = agents.new()
    code = """
        import os, subprocess
        child = subprocess.Popen(['sleep', '60'])
        open('pids', 'w').write(f'{os.getpid()} {child.pid}')
        child.wait()
    """
    job_id = agent.submit(job(tmp_path, "k", code, timeout_s=1.0, max_retries=2))
    wait_for(done(agent, job_id), "the timeout")
    status = agent.status(job_id)
    assert (status.state, status.message, status.attempts) == ("failed", "timed out after 1s", 1)
    child_pid = int((tmp_path / "pids").read_text().split()[1])
    wait_for(lambda: not _alive(child_pid), "the grandchild to die")


def test_cancel_queued_and_running_jobs_from_another_instance(agents: Agents, tmp_path: Path) -> None:
    finished: list[tuple[str, str]] = []
    agent = agents.new(max_concurrent=1, on_finished=lambda req, st: finished.append((st.id, st.state)))
    running_id = agent.submit(
        job(  # written aside, then renamed: the test never reads a file the job has created but not yet written
            tmp_path,
            "long",
            "import os, time; open('pid.new', 'w').write(str(os.getpid())); os.replace('pid.new', 'pid'); "
            "time.sleep(60)",
        )
    )
    queued_id = agent.submit(job(tmp_path, "next", "print('never')"))
    wait_for((tmp_path / "pid").exists, "the long job to start")
    pid = int((tmp_path / "pid").read_text())

    submitter = agents.new(start=False)
    submitter.cancel(queued_id)
    submitter.cancel(running_id)
    assert submitter.status(queued_id).state == "cancelled"
    assert submitter.status(running_id).state == "cancelled"
    wait_for(lambda: not _alive(pid), "the cancelled process to die")
    wait_for(lambda: len(finished) == 2, "both notifications")
    assert sorted(finished) == sorted([(running_id, "cancelled"), (queued_id, "cancelled")])
    with pytest.raises(KeyError):
        submitter.cancel("job-unknown")


def test_on_finished_once_per_job_even_when_the_callback_fails(agents: Agents, tmp_path: Path) -> None:
    delivered: list[JobStatus] = []
    failures = {"left": 1}
    lock = threading.Lock()

    def on_finished(request: JobRequest, status: JobStatus) -> None:
        with lock:
            if failures["left"]:
                failures["left"] -= 1
                raise RuntimeError("bus unavailable")
            delivered.append(status)

    agent = agents.new(on_finished=on_finished)
    ok_id = agent.submit(job(tmp_path, "ok", "print('fine')"))
    bad_id = agent.submit(job(tmp_path, "bad", "raise SystemExit(2)"))
    wait_for(lambda: len(delivered) == 2, "two deliveries")
    agent.stop()
    agent.tick()  # an extra iteration must not deliver again
    assert sorted((s.id, s.state) for s in delivered) == sorted([(ok_id, "succeeded"), (bad_id, "failed")])
    assert failures["left"] == 0


def test_restart_redelivers_unnotified_completions(agents: Agents, tmp_path: Path) -> None:
    def broken(request: JobRequest, status: JobStatus) -> None:
        raise RuntimeError("bus down")

    first = agents.new(on_finished=broken)
    job_id = first.submit(job(tmp_path, "k", "print('done')"))
    wait_for(done(first, job_id), "the job")
    first.stop()

    delivered: list[tuple[str, str]] = []
    second = agents.new(on_finished=lambda req, st: delivered.append((req.key, st.state)))
    wait_for(lambda: delivered == [("k", "succeeded")], "redelivery")
    second.stop()
    third = agents.new(start=False, on_finished=lambda req, st: delivered.append((req.key, st.state)))
    third.tick()
    assert delivered == [("k", "succeeded")]


def test_missing_workdir_is_a_code_error(agents: Agents, tmp_path: Path) -> None:
    agent = agents.new()
    job_id = agent.submit(job(tmp_path / "nope", "k", "print(1)", max_retries=2))
    wait_for(done(agent, job_id), "the job")
    assert agent.status(job_id).state == "failed" and "could not start" in agent.status(job_id).message


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead for our purposes
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_jobs_get_an_allowlisted_env_and_their_own_but_never_relaunch_settings(
    agents: Agents, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAUNCH_GITHUB_WEBHOOK_SECRET", "do-not-leak")
    monkeypatch.setenv("GITHUB_TOKEN", "do-not-leak-either")  # not relaunch's, still nothing a job should see
    monkeypatch.setenv("LC_MESSAGES", "C")
    agent = agents.new()
    code = "import os; print(sorted(k for k in os.environ if k.startswith(('RELAUNCH_', 'GITHUB_', 'LC_', 'AIP_'))))"
    job_id = agent.submit(job(tmp_path, "env", code, env={"RELAUNCH_RUN_ID": "run-1"}, output_dir="/m"))
    wait_for(done(agent, job_id), "the job to finish")
    tail = agent.status(job_id).log_tail
    expected = ["AIP_CHECKPOINT_DIR", "AIP_MODEL_DIR", "AIP_TENSORBOARD_LOG_DIR", "LC_MESSAGES", "RELAUNCH_RUN_ID"]
    assert str(expected) in tail, tail
    assert "do-not-leak" not in tail


def test_a_job_gets_vertexs_output_variables_and_may_not_set_them_itself(agents: Agents, tmp_path: Path) -> None:
    """What Vertex AI gives a CustomJob with baseOutputDirectory <base>: <base>/model/, /checkpoints/, /logs/."""
    agent = agents.new()
    base = str(tmp_path / "runs" / "run-1")
    code = "import os; print({k: v for k, v in sorted(os.environ.items()) if k.startswith('AIP_')})"
    job_id = agent.submit(job(tmp_path, "out", code, output_dir=base))
    shadow = agent.submit(job(tmp_path, "shadow", code, output_dir=base, env={"AIP_MODEL_DIR": "/elsewhere"}))
    wait_for(lambda: agent.status(job_id).done and agent.status(shadow).done, "both jobs to finish")
    expected = {
        "AIP_CHECKPOINT_DIR": f"{base}/checkpoints/",
        "AIP_MODEL_DIR": f"{base}/model/",
        "AIP_TENSORBOARD_LOG_DIR": f"{base}/logs/",
    }
    assert str(expected) in agent.status(job_id).log_tail
    refused = agent.status(shadow)
    assert refused.state == "failed" and "env.AIP_MODEL_DIR" in refused.message, refused


def test_a_job_dies_with_its_agent_even_when_the_agent_is_killed(agents: Agents, tmp_path: Path) -> None:
    """kill -9 of the agent's process takes its jobs down (PR_SET_PDEATHSIG): none keeps writing into a run."""
    request = job(tmp_path, "k-orphan", "import time; time.sleep(60)")
    script = (
        "import sys, time; from pathlib import Path; from relaunch.adapters.local.agent import LocalAgent;"
        "from relaunch.domain.model import JobRequest;"
        "a = LocalAgent(Path(sys.argv[1]), Path(sys.argv[2]), poll_interval=0.02);"
        "a.submit(JobRequest.model_validate_json(sys.argv[3])); a.start(); time.sleep(120)"
    )
    argv = [sys.executable, "-c", script, str(agents.db), str(agents.logs), request.model_dump_json()]
    host = subprocess.Popen(argv, start_new_session=True)
    observer = agents.new(start=False)
    try:
        wait_for(lambda: (row := observer.jobs.in_states("running")) != [] and bool(row[0]["pid"]), "the job to run")
        pid = int(observer.jobs.in_states("running")[0]["pid"])
        os.kill(host.pid, 9)
        host.wait(timeout=10)
        wait_for(lambda: not os.path.exists(f"/proc/{pid}") or _zombie(pid), "the job to die with its agent", 10)
    finally:
        if host.poll() is None:
            os.killpg(host.pid, 9)
            host.wait(timeout=10)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"
    except OSError:
        return True
