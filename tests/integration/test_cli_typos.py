"""`relaunch simulate` with a user's typo, or after its stack was killed: one line saying what is wrong (issue 17).

A usage error exits 2, "the stack is not there" exits 1; no traceback, ever. Each case is run in-process through
`relaunch.cli.main`, so an exception that escapes it (the traceback a user would see) fails the test.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from relaunch.cli import main
from relaunch.domain.model import FunctionName
from relaunch.simulate import git

ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def write_stack_state(home: Path, pid: int) -> None:
    """A stack.json as `relaunch up` writes it, naming `pid` and functions on a port nobody answers."""
    home.mkdir(parents=True, exist_ok=True)
    base = f"http://127.0.0.1:{closed_port()}"
    urls = {name.value: f"{base}/{name.value}" for name in FunctionName}
    (home / "stack.json").write_text(json.dumps({"pid": pid, "urls": {**urls, "endpoint": base}}))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A home whose stack.json names this live process, so every check is reached however early the stack is read."""
    for name in [k for k in os.environ if k.startswith("RELAUNCH_")]:
        monkeypatch.delenv(name)
    state = tmp_path / "home"
    monkeypatch.setenv("RELAUNCH_HOME", str(state))
    monkeypatch.setenv("RELAUNCH_PIPELINES_DIR", str(ROOT / "pipelines"))
    write_stack_state(state, os.getpid())
    yield state


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A one-commit repository on branch main."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text("print('hi')\n")
    git(path, "add", "-A")
    git(path, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "first")
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Run `relaunch ARGV` in-process: its exit code and stderr (argparse's SystemExit included)."""
    try:
        code: int | str | None = main(list(argv))
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err
    if isinstance(code, str):  # SystemExit("message"): Python prints it and exits 1
        return 1, err + code + "\n"
    return int(code or 0), err


def one_line(err: str) -> str:
    """The one line saying what is wrong: argparse's error line after its usage, or the whole of stderr."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert lines, "nothing said"
    if lines[0].startswith("usage:"):
        return lines[-1]
    assert len(lines) == 1, err
    return lines[0]


def test_pr_with_a_base_branch_that_does_not_exist(home: Path, repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = cli(capsys, "simulate", "pr", "--repo-dir", str(repo), "--full-name", "a/b", "--base", "develop")
    line = one_line(err)
    assert code == 2 and "develop" in line and "main" in line, err  # names the branches there are


def test_a_repo_dir_that_is_not_a_git_repository(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    for kind in ("push", "pr"):
        code, err = cli(capsys, "simulate", kind, "--repo-dir", str(plain), "--full-name", "a/b")
        line = one_line(err)
        assert code == 2 and "not a git repository" in line and str(plain) in line, err
    code, err = cli(capsys, "simulate", "push", "--repo-dir", str(tmp_path / "gone"), "--full-name", "a/b")
    assert code == 2 and "does not exist" in one_line(err), err


def test_a_repository_without_a_commit(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q", "-b", "main")
    code, err = cli(capsys, "simulate", "push", "--repo-dir", str(empty), "--full-name", "a/b")
    assert code == 2 and "no commit" in one_line(err), err


def test_push_with_an_unknown_before(home: Path, repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", "push", "--repo-dir", str(repo), "--full-name", "a/b", "--before", "f" * 40]
    code, err = cli(capsys, *argv)
    assert code == 2 and "--before" in one_line(err), err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["push", "--repo-dir", "REPO", "--full-name", "nodash"], "owner/name"),
        (["pr", "--repo-dir", "REPO", "--full-name", "a/b/c"], "owner/name"),
        (["dispatch", "--full-name", "nodash"], "owner/name"),
        (["retrain", "--full-name", "a b/c"], "owner/name"),
        (["pr", "--repo-dir", "REPO", "--full-name", "a/b", "--number", "-3"], "positive"),
        (["pr", "--repo-dir", "REPO", "--full-name", "a/b", "--number", "two"], "positive"),
        (["dispatch", "--full-name", "a/b", "--input", "pipeline"], "NAME=VALUE"),
        (["dispatch", "--full-name", "a/b", "--input", "=digits"], "NAME=VALUE"),
        (["retrain", "--full-name", "a/b", "--priority", "500"], "0 to 100"),
        (["wandb", "--artifact", "digits-model:v1"], "entity/project/name"),
        (["wandb", "--artifact", "acme/digits"], "entity/project/name"),
        (["wandb", "--artifact", "acme/digits/m", "--model-dir", "MISSING"], "not a folder"),
        (["drift", "--pipeline", "Digits!"], "pipeline name"),
        (["schedule", "--pipeline", ""], "pipeline name"),
        (["cloudbuild", "--run", "r1", "--status", "success"], "Cloud Build status"),
        (["build", "--run", "r1"], "did you mean 'cloudbuild'"),
    ],
    ids=lambda v: "-".join(v) if isinstance(v, list) else None,
)
def test_usage_errors_exit_2_with_one_line(
    home: Path, repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    real = [str(repo) if a == "REPO" else str(tmp_path / "missing") if a == "MISSING" else a for a in argv]
    code, err = cli(capsys, "simulate", *real)
    assert code == 2 and said in one_line(err), err


@pytest.mark.parametrize(
    "argv",
    [
        ["schedule", "--pipeline", "nope"],
        ["drift", "--pipeline", "nope"],
        ["retrain", "--full-name", "relaunch-demo/digits", "--pipeline", "nope"],
        ["dispatch", "--full-name", "relaunch-demo/digits", "--input", "pipeline=nope"],
    ],
    ids=["schedule", "drift", "retrain", "dispatch"],
)
def test_an_unknown_pipeline_is_named_with_the_known_ones(
    home: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, err = cli(capsys, "simulate", *argv)
    line = one_line(err)
    assert code == 2 and "'nope'" in line and "digits" in line and "RELAUNCH_PIPELINES_DIR" in line, err


def test_drift_needs_a_pipeline_or_an_endpoint(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = cli(capsys, "simulate", "drift")
    assert code == 2 and "--pipeline" in one_line(err) and "--endpoint" in one_line(err), err


def test_an_unknown_kind_lists_the_kinds_which_name_their_sources(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = cli(capsys, "simulate", "nope")
    line = one_line(err)
    assert code == 2 and "cloudbuild" in line and "'build'" not in line and "did you mean" not in line, err


def test_a_stack_that_does_not_answer_is_one_line_exit_1(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """stack.json names a live process (this one) whose functions do not listen: the request fails to connect."""
    code, err = cli(capsys, "simulate", "dispatch", "--full-name", "relaunch-demo/digits")
    line = one_line(err)
    assert code == 1 and "does not answer" in line and "relaunch up" in line, err


@pytest.mark.parametrize(
    "argv",
    [
        ["dispatch", "--full-name", "relaunch-demo/digits"],
        ["schedule", "--pipeline", "digits"],
        ["cloudbuild", "--run", "r1"],
    ],
    ids=["dispatch", "schedule", "cloudbuild"],
)
def test_a_stale_stack_json_is_one_line_exit_1(home: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """What kill -9 of `relaunch up` leaves: a stack.json naming a process that is gone."""
    write_stack_state(home, dead_pid())
    code, err = cli(capsys, "simulate", *argv)
    line = one_line(err)
    assert code == 1 and "not running" in line and "relaunch up" in line, err
    assert not (home / "bus.db").exists()  # nothing published into a bus nobody delivers


@pytest.mark.e2e
def test_simulate_after_the_stack_was_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's session: `relaunch up` killed -9, then `simulate dispatch` (a ConnectionError traceback)."""
    from tests.stack_process import StackProcess

    for name in [k for k in os.environ if k.startswith("RELAUNCH_")]:
        monkeypatch.delenv(name)
    home = tmp_path / "home"
    env = {**os.environ, "RELAUNCH_HOME": str(home), "RELAUNCH_PIPELINES_DIR": str(ROOT / "pipelines")}
    monkeypatch.setenv("RELAUNCH_HOME", str(home))
    monkeypatch.setenv("RELAUNCH_PIPELINES_DIR", str(ROOT / "pipelines"))
    stack = StackProcess(env, home, tmp_path / "up.log").start()
    try:
        assert cli(capsys, "simulate", "cloudbuild", "--run", "r1")[0] == 0  # the stack answers while it runs
        stack.kill9()
    finally:
        stack.stop()
    code, err = cli(capsys, "simulate", "dispatch", "--full-name", "relaunch-demo/digits")
    line = one_line(err)
    assert code == 1 and "not running" in line and "relaunch up" in line, err
