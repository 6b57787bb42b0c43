"""LocalAgent with the job sandbox: a job sees none of the stack's processes or state, and the agent still classifies,
times out, cancels and outlives its jobs as without it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from relaunch.adapters.local.agent import LocalAgent
from relaunch.adapters.local.sandbox import JobSandbox, probe
from relaunch.domain.model import JobRequest

WHY_NOT = probe()
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=f"no job sandbox on this machine: {WHY_NOT}")
DEADLINE_S = 20.0
RUN = "digits-0123456789"

# What a hostile job tries: every answer is True when the sandbox did its work.
SNOOP = """
import json, os, sys
from pathlib import Path
home, out = Path(sys.argv[1]), Path(os.environ["AIP_MODEL_DIR"])

def fails(action):
    try:
        action()
    except OSError:
        return True
    return False

champion = home / "artifacts" / "runs" / sys.argv[2] / "inputs" / "champion-v1"
out.mkdir(parents=True, exist_ok=True)
(out / "model.txt").write_text("trained")
print(json.dumps({
    "sees_only_itself": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()) == [1, os.getpid()],
    "no_store": fails(lambda: open(home / "relaunch.db", "rb").read()),
    "no_secrets": fails(lambda: os.listdir(home / "secrets")),
    "no_secret_file": fails(lambda: (home / "secrets" / "github_webhook_secret").read_text()),
    "no_registry_write": fails(lambda: (home / "registry" / "digits" / "v1" / "model.joblib").write_text("pwned")),
    "no_new_registry": fails(lambda: (home / "registry" / "evil").mkdir(parents=True)),
    "no_walk_up": fails(lambda: open("../../relaunch.db", "rb").read()),
    "reads_checkout": Path("data.csv").read_text() == "x,y\\n",
    "wrote_model": (out / "model.txt").read_text() == "trained",
    "reads_champion": (champion / "model.joblib").read_text() == "champion",
    "champion_read_only": fails(lambda: (champion / "model.joblib").write_text("pwned")),
    "no_planted_champion": fails(lambda: (champion.parent / "champion-v2").mkdir()),
}))
"""


def wait_for(condition: Callable[[], bool], what: str, timeout: float = DEADLINE_S) -> None:
    """Poll until `condition` holds; fail the test after a generous deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A stack's home as the embedded stack lays it out, with state a job must not reach."""
    home = tmp_path / "home"
    for folder in ("secrets", "registry/digits/v1", f"workspaces/{RUN}", f"artifacts/runs/{RUN}/inputs/champion-v1"):
        (home / folder).mkdir(parents=True, mode=0o700)
    (home / "relaunch.db").write_text("runs")
    (home / "secrets" / "github_webhook_secret").write_text("s3cret")
    (home / "registry" / "digits" / "v1" / "model.joblib").write_text("live")
    (home / "workspaces" / RUN / "data.csv").write_text("x,y\n")
    (home / "artifacts" / "runs" / RUN / "inputs" / "champion-v1" / "model.joblib").write_text("champion")
    return home


@pytest.fixture
def agent(home: Path) -> Iterator[LocalAgent]:
    sandbox = JobSandbox(home, home / "artifacts" / "runs")
    made = LocalAgent(home / "agent.db", home / "logs", poll_interval=0.02, sandbox=sandbox)
    made.start()
    yield made
    made.stop()


def job(home: Path, key: str, code: str, *args: str, **fields: object) -> JobRequest:
    """A `python -c` job of run RUN in its checkout, its model going to the run's own folder."""
    output = str(home / "artifacts" / "runs" / RUN)  # the agent sets AIP_MODEL_DIR=<output>/model/, as Vertex does
    command = ["python", "-c", textwrap.dedent(code), *args]
    workdir = str(home / "workspaces" / RUN)
    return JobRequest(key=key, run_id=RUN, step="train", image=workdir, command=command, output_dir=output, **fields)  # type: ignore[arg-type]


def finished(agent: LocalAgent, job_id: str) -> str:
    wait_for(lambda: agent.status(job_id).done, f"job {job_id}")
    return agent.status(job_id).message


def test_a_job_sees_no_process_and_no_state_of_the_stack_but_has_what_it_needs(agent: LocalAgent, home: Path) -> None:
    job_id = agent.submit(job(home, "snoop", SNOOP, str(home), RUN))
    assert finished(agent, job_id) == "exited with code 0", agent.status(job_id).log_tail
    seen = json.loads(agent.status(job_id).log_tail.splitlines()[-1])
    assert [name for name, ok in seen.items() if not ok] == [], seen
    assert (home / "artifacts" / "runs" / RUN / "model" / "model.txt").read_text() == "trained"
    assert (home / "registry" / "digits" / "v1" / "model.joblib").read_text() == "live"
    assert not (home / "registry" / "evil").exists()


def test_a_training_job_cannot_plant_a_champion_for_the_evaluation_to_score(agent: LocalAgent, home: Path) -> None:
    run = "digits-nochampion"
    (home / "workspaces" / run).mkdir()
    plant = "from pathlib import Path; import sys; Path(sys.argv[1]).mkdir(parents=True); print('planted')"
    target = home / "artifacts" / "runs" / run / "inputs" / "champion-v1"
    request = job(home, "plant", plant, str(target)).model_copy(
        update={"run_id": run, "image": str(home / "workspaces" / run)}
    )
    job_id = agent.submit(request)
    assert finished(agent, job_id) == "exited with code 1"
    assert "Read-only file system" in agent.status(job_id).log_tail
    assert not target.exists()


def test_exit_codes_and_signals_are_reported_as_without_the_sandbox(agent: LocalAgent, home: Path) -> None:
    cases = {
        "import sys; sys.exit(3)": "exited with code 3",
        "import os, signal; os.kill(os.getpid(), signal.SIGKILL)": "killed by signal SIGKILL",
        "import os, signal; os.kill(os.getpid(), signal.SIGTERM)": "killed by signal SIGTERM",
        "import os; os.abort()": "killed by signal SIGABRT",
        "print('fine')": "exited with code 0",
    }
    ids = {code: agent.submit(job(home, f"exit-{n}", code)) for n, code in enumerate(cases)}
    assert {code: finished(agent, job_id) for code, job_id in ids.items()} == cases


def test_a_missing_command_is_a_code_error(agent: LocalAgent, home: Path) -> None:
    request = job(home, "missing", "").model_copy(update={"command": ["no-such-program-relaunch"]})
    assert finished(agent, agent.submit(request)) == "exited with code 127"


def test_timeout_and_cancel_kill_the_job_and_everything_it_started(agent: LocalAgent, home: Path) -> None:
    spawner = (
        "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', "
        "sys.argv[1]]); time.sleep(60)"
    )
    slow, cancelled = uuid.uuid4().hex, uuid.uuid4().hex
    timed_out = agent.submit(job(home, "slow", spawner, slow, timeout_s=1.0))
    running = agent.submit(job(home, "cancel", spawner, cancelled))
    wait_for(lambda: len(_processes_with(cancelled)) >= 4, "the job and its child to run")  # outer, init, job, child
    agent.cancel(running)
    assert finished(agent, timed_out) == "timed out after 1s"
    wait_for(lambda: not _processes_with(slow) and not _processes_with(cancelled), "every process to be gone")
    assert agent.status(running).state == "cancelled"


def test_a_sandboxed_job_dies_with_its_agent_even_when_the_agent_is_killed(home: Path) -> None:
    marker = uuid.uuid4().hex
    request = job(home, "orphan", "import time; time.sleep(60)", marker)
    script = (
        "import sys, time; from pathlib import Path; from relaunch.adapters.local.agent import LocalAgent;"
        "from relaunch.adapters.local.sandbox import JobSandbox; from relaunch.domain.model import JobRequest;"
        "home = Path(sys.argv[1]); box = JobSandbox(home, home / 'artifacts' / 'runs');"
        "a = LocalAgent(home / 'agent.db', home / 'logs', poll_interval=0.02, sandbox=box);"
        "a.submit(JobRequest.model_validate_json(sys.argv[2])); a.start(); time.sleep(120)"
    )
    host = subprocess.Popen(
        [sys.executable, "-c", script, str(home), request.model_dump_json()], start_new_session=True
    )
    try:
        wait_for(lambda: len(_processes_with(marker)) >= 3, "the sandboxed job to run")
        os.kill(host.pid, signal.SIGKILL)
        host.wait(timeout=10)
        wait_for(lambda: not _processes_with(marker), "the job to die with its agent")
    finally:
        if host.poll() is None:
            os.killpg(host.pid, signal.SIGKILL)
            host.wait(timeout=10)


def _processes_with(marker: str) -> list[int]:
    """Live (not zombie) processes of this machine whose command line holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "cmdline").read_text(errors="replace"):
                if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found
