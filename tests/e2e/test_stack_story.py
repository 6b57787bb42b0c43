"""`relaunch up` tells a run's story: on its terminal (one line per delivery and state change), in the function logs
(keyed by run id), on ports a user fixed, and without any secret; a job's whole tree dies with a kill -9 of it."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from relaunch.adapters.local.stack import FUNCTIONS
from relaunch.bootstrap import App
from relaunch.demo import demo_specs
from relaunch.domain.model import PipelineRun
from relaunch.settings import Settings
from relaunch.simulate import push_payload, send_github
from tests.e2e.test_crash_safety import commit_params, make_repo
from tests.integration.test_job_descendants import sleepers

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
REPO = "relaunch-demo/digits"
SECRET = "story-secret-0123456789"
SETTLE_S = 90.0


def free_base(width: int) -> int:
    """A base port with `width` free ports above it, found now (a random start: parallel tests differ)."""
    for _ in range(200):
        base = random.randint(20000, 60000)
        try:
            socks = []
            for port in range(base, base + width):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    pytest.fail("no free port range")


@dataclass
class Up:
    process: subprocess.Popen[bytes]
    out: Path
    home: Path

    def urls(self, timeout: float = 60.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.out.read_text()
            try:
                state = json.loads((self.home / "stack.json").read_text())
                if state["pid"] == self.process.pid:
                    return dict(state["urls"])
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.05)
        pytest.fail(f"relaunch up did not come up: {self.out.read_text()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        return self.process.wait(timeout=60)


def start_up(env: dict[str, str], home: Path, out: Path, *args: str) -> Up:
    with out.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "relaunch", "up", *args],
            env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    return Up(process, out, home)


def settled(app: App) -> PipelineRun:
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        runs = app.store.list_runs()
        if runs and all(run.state.terminal for run in runs):
            [run] = runs
            return run
        time.sleep(0.2)
    pytest.fail(f"no run settled: {[(r.id, r.state.value) for r in app.store.list_runs()]}")


@dataclass
class Story:
    run: PipelineRun
    states: list[str]
    output: str
    logs: dict[str, str]
    urls: dict[str, str]
    base: int
    home: Path


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    """One push through `relaunch up --port-base N`, its stdout piped to a file, stopped cleanly once settled."""
    tmp = tmp_path_factory.mktemp("story")
    home, base = tmp / "home", free_base(len(FUNCTIONS) + 1)
    env = {
        **os.environ,
        "RELAUNCH_HOME": str(home),
        "RELAUNCH_PIPELINES_DIR": str(demo_specs(ROOT / "pipelines", tmp / "pipelines", tmp / "digits")),
        "RELAUNCH_GITHUB_WEBHOOK_SECRET": SECRET,
    }
    repo = make_repo(tmp / "digits")
    up = start_up(env, home, tmp / "up.out", "--port-base", str(base))
    try:
        urls = up.urls()
        commit_params(repo, 0)
        reply = send_github(urls["github_webhook"], "push", push_payload(repo, full_name=REPO), SECRET, "story-1")
        assert reply.status_code == 202, reply.text
        app = App(Settings(home=home))
        run = settled(app)
        states = [e.data["to"] for e in app.store.timeline(run.id) if e.kind == "state"]
        time.sleep(1.5)  # the follower polls every ~0.5 s: let it print the last state
    finally:
        code = up.stop()
    assert code == 0, up.out.read_text()
    logs = {p.name: p.read_text() for p in (home / "logs").rglob("*.log")}
    yield Story(run, states, up.out.read_text(), logs, urls, base, home)


def test_up_prints_each_delivery_and_each_state_change(story: Story) -> None:
    lines = story.output.splitlines()
    [delivery] = [line for line in lines if "github:story-1" in line]
    assert "accepted" in delivery and story.run.id in delivery
    shown = [line for line in lines if story.run.id in line and line is not delivery]
    assert len(shown) == len(story.states), story.output
    for line, state in zip(shown, story.states, strict=True):
        assert f" {story.run.id} " in f" {line} " and " digits " in line and f" {state}" in line, line
    assert "\x1b[" not in story.output  # piped: plain text


def test_the_function_logs_tell_the_runs_stages_keyed_by_run_id(story: Story) -> None:
    orchestrator = story.logs["orchestrator.log"]
    keyed = [line for line in orchestrator.splitlines() if f"run={story.run.id}" in line]
    assert keyed, orchestrator
    for state in story.states[1:]:  # every move the orchestrator made, each on a line of its own run
        assert any(f"-> {state}" in line for line in keyed), (state, orchestrator)
    stack = story.logs["stack.log"]  # the stack process (bus dispatcher, completion relay) writes readable lines
    assert " INFO " in stack and not stack.lstrip().startswith("{")
    assert any(f"run={story.run.id}" in line for line in story.logs["agent.log"].splitlines())


def test_no_secret_reaches_a_log_or_the_terminal(story: Story) -> None:
    for name, text in {**story.logs, "up": story.output}.items():
        assert SECRET not in text, name


def test_port_base_fixes_every_port_in_a_documented_order(story: Story) -> None:
    expected = {name: story.base + i for i, name in enumerate(FUNCTIONS)}
    assert {name: int(url.rstrip("/").rsplit(":", 1)[1]) for name, url in story.urls.items()} == {
        **expected,
        "endpoint": story.base + len(FUNCTIONS),
        "dashboard": story.base + len(FUNCTIONS) + 1,  # `relaunch up` serves it, after the endpoint
    }


def test_a_taken_port_is_a_one_line_error_naming_port_and_function(tmp_path: Path) -> None:
    base = free_base(len(FUNCTIONS) + 1)
    env = {
        **os.environ,
        "RELAUNCH_HOME": str(tmp_path / "home"),
        "RELAUNCH_PIPELINES_DIR": str(ROOT / "pipelines"),
        "RELAUNCH_INSECURE_DEV_MODE": "true",
        "RELAUNCH_PORT_ORCHESTRATOR": str(base + 2),
    }
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", base + 2))
        taken.listen()
        done = subprocess.run(
            [sys.executable, "-m", "relaunch", "up", "--port-base", str(base)],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode != 0
    [line] = done.stderr.strip().splitlines()
    assert str(base + 2) in line and "orchestrator" in line and "Traceback" not in done.stderr, done.stderr


def test_kill9_of_the_stack_ends_every_process_a_job_started(tmp_path: Path) -> None:
    """A shell job's background child, a setsid'd one and an orphan: all gone after kill -9, with no restart."""
    seconds = f"{random.randint(3000, 3999)}.{random.randint(0, 999999):06d}"
    repo = make_repo(tmp_path / "digits")
    spec = yaml.safe_load((ROOT / "pipelines" / "digits.yaml").read_text())
    spec["source"]["clone_url"] = repo.resolve().as_uri()
    spec["train"]["command"] = ["sh", "-c", f"sleep {seconds} & setsid sleep {seconds} & (sleep {seconds} &); sleep 60"]
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "digits.yaml").write_text(yaml.safe_dump(spec))
    home = tmp_path / "home"
    env = {
        **os.environ,
        "RELAUNCH_HOME": str(home),
        "RELAUNCH_PIPELINES_DIR": str(tmp_path / "pipelines"),
        "RELAUNCH_GITHUB_WEBHOOK_SECRET": SECRET,
        "RELAUNCH_JOB_SANDBOX": "off",  # a sandboxed job's PID namespace ends with it anyway
    }
    up = start_up(env, home, tmp_path / "up.out")
    try:
        urls = up.urls()
        commit_params(repo, 0)
        assert send_github(urls["github_webhook"], "push", push_payload(repo, full_name=REPO), SECRET, "k").ok
        deadline = time.monotonic() + SETTLE_S
        while len(sleepers(seconds)) < 3:
            assert time.monotonic() < deadline, up.out.read_text()
            time.sleep(0.1)
        os.kill(up.process.pid, signal.SIGKILL)
        up.process.wait(timeout=10)
        deadline = time.monotonic() + 15
        while sleepers(seconds) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not sleepers(seconds), "processes of the job outlived a kill -9 of the stack"
    finally:
        if up.process.poll() is None:
            up.stop()
        for pid in sleepers(seconds):
            os.kill(pid, signal.SIGKILL)
