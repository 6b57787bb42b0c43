"""The console script without a stack, and `relaunch up` refusing or dying with its functions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from relaunch.bootstrap import App
from relaunch.cli import main
from relaunch.domain.model import RunState
from relaunch.settings import Settings
from relaunch.simulate import github_headers
from relaunch.triggers.github import parse_github
from tests.integration.test_exactly_once import push_body

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def relaunch(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relaunch.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def start_up(env: dict[str, str], home: Path, *, stdout: int) -> subprocess.Popen[str]:
    """`relaunch up` in its own session, returned once its stack.json says it is listening."""
    up = subprocess.Popen(
        [sys.executable, "-m", "relaunch.cli", "up"],
        env=env,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(home / "stack.json", up)
    except BaseException:
        os.killpg(up.pid, signal.SIGTERM)
        up.wait(timeout=30)
        raise
    return up


# `relaunch up` then `simulate` then a clean stop: tests/e2e/test_readme_walkthrough.py (its stack, checked).


def test_simulate_without_a_running_stack_says_how_to_start_one(tmp_path: Path) -> None:
    env = {**os.environ, "RELAUNCH_HOME": str(tmp_path)}
    done = relaunch("simulate", "push", "--repo-dir", str(tmp_path), "--full-name", "a/b", env=env)
    assert done.returncode != 0 and "relaunch up" in done.stderr and "Traceback" not in done.stderr


def test_runs_on_an_empty_home_and_an_unknown_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RELAUNCH_HOME", str(tmp_path / "nowhere"))
    assert main(["runs"]) == 0 and "no runs yet" in capsys.readouterr().out
    assert not (tmp_path / "nowhere").exists()
    monkeypatch.setenv("RELAUNCH_HOME", str(tmp_path))
    assert App(Settings(home=tmp_path)).store.list_runs() == []  # creates an empty store
    assert main(["runs"]) == 0 and "PIPELINE" in capsys.readouterr().out
    assert main(["runs", "show", "nope"]) == 1 and "no run 'nope'" in capsys.readouterr().err


def test_a_bad_setting_is_named_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RELAUNCH_MAX_CONCURRENT_JOBS", "zero")
    assert main(["runs"]) == 2
    assert "invalid configuration: RELAUNCH_MAX_CONCURRENT_JOBS" in capsys.readouterr().err


def test_up_refuses_a_broken_spec_naming_the_file_and_field(tmp_path: Path) -> None:
    specs = tmp_path / "pipelines"
    specs.mkdir()
    broken = (
        (ROOT / "pipelines" / "digits.yaml").read_text().replace("endpoint: digits", "endpoint: digits\nendpiont: x")
    )
    (specs / "digits.yaml").write_text(broken)
    env = {**os.environ, "RELAUNCH_HOME": str(tmp_path / "home"), "RELAUNCH_PIPELINES_DIR": str(specs)}
    done = relaunch("up", env=env)
    assert done.returncode == 2 and "digits.yaml: endpiont: Extra inputs are not permitted" in done.stderr
    assert not (tmp_path / "home" / "stack.json").exists()


def test_functions_die_with_a_stack_killed_by_sigkill(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "RELAUNCH_HOME": str(home), "RELAUNCH_PIPELINES_DIR": str(ROOT / "pipelines")}
    up = start_up(env, home, stdout=subprocess.DEVNULL)
    try:
        ports = [
            int(url.rsplit(":", 1)[1].strip("/"))
            for url in json.loads((home / "stack.json").read_text())["urls"].values()
        ]
    finally:
        os.killpg(up.pid, signal.SIGKILL)
        up.wait(timeout=10)
    deadline = time.monotonic() + 20
    while any(_listening(port) for port in ports):
        assert time.monotonic() < deadline, "functions outlived their stack"
        time.sleep(0.1)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize(
    "args",
    [
        ["pr", "--repo-dir", ".", "--full-name", "a/b"],
        ["dispatch", "--full-name", "a/b"],
        ["drift", "--pipeline", "digits"],
        ["schedule", "--pipeline", "digits"],
        ["wandb", "--artifact", "e/p/n:v0"],
        ["cloudbuild", "--run", "r1"],
    ],
    ids=["pr", "dispatch", "drift", "schedule", "wandb", "cloudbuild"],
)
def test_every_simulate_kind_without_a_stack_says_how_to_start_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    monkeypatch.setenv("RELAUNCH_HOME", str(tmp_path))
    with pytest.raises(SystemExit) as stop:
        main(["simulate", *args])
    assert "relaunch up" in str(stop.value.code)


def test_inbox_and_replay_on_an_empty_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RELAUNCH_HOME", str(tmp_path / "nowhere"))
    assert main(["inbox"]) == 0 and "no deliveries yet" in capsys.readouterr().out
    assert main(["replay", "github:x"]) == 1 and "no inbox" in capsys.readouterr().err
    monkeypatch.setenv("RELAUNCH_HOME", str(tmp_path))
    App(Settings(home=tmp_path)).store.list_runs()  # creates an empty store
    assert main(["inbox", "--dead", "--json"]) == 0 and json.loads(capsys.readouterr().out) == []
    assert main(["replay", "github:x"]) == 1 and "no delivery 'github:x'" in capsys.readouterr().err


def test_replay_of_a_trained_push_is_a_duplicate_until_forced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RELAUNCH_HOME", str(tmp_path))
    monkeypatch.setenv("RELAUNCH_PIPELINES_DIR", str(ROOT / "pipelines"))
    app = App(Settings(home=tmp_path, pipelines_dir=ROOT / "pipelines"))
    body = push_body()
    headers = github_headers("push", body, "s", "cli-1")
    app.ingest.github(parse_github(headers, body, secret="s"), headers, body)
    [run] = app.store.list_runs()
    app.store.save_run(run.model_copy(update={"state": RunState.PROMOTED}))
    assert main(["replay", "github:cli-1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("200 ") and '"outcome": "duplicate"' in out and "--force" in out
    assert main(["replay", "github:cli-1", "--force"]) == 0
    assert capsys.readouterr().out.startswith("202 ")
    runs = app.store.list_runs()
    assert len(runs) == 2 and sum(r.trigger.force for r in runs) == 1
