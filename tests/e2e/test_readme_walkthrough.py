"""The README's walkthrough, run from top to bottom: every command it shows, with the output it shows checked; and,
while its `relaunch up` runs, what that stack made (its generated secret, private), a second `up` refused, and its
clean stop on Ctrl-C.

README and behaviour cannot drift apart: a command whose output changed, or a command that fails, fails this test
with the step, what the README shows and what the command printed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.walkthrough import Step, parse

REPO = Path(__file__).resolve().parents[2]
COMMAND_TIMEOUT_S = 180.0


def _env(tmp: Path) -> dict[str, str]:
    # A reader's shell: no setting, not even the suite's shared environments (the first push builds its own). uv's
    # cache stays this machine's, as a reader's would (with HOME moved, the first push downloaded every wheel again).
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAUNCH_")}
    env["UV_CACHE_DIR"] = _uv_cache_dir()
    bin_dir = str(Path(sys.executable).parent)  # the `relaunch` console script of this interpreter's install
    env.update({"PATH": bin_dir + os.pathsep + env.get("PATH", ""), "NO_COLOR": "1", "HOME": str(tmp / "home")})
    env.update({"GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@example.com"})
    env.update({"GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@example.com"})
    env.pop("COLUMNS", None)
    return env


def _uv_cache_dir() -> str:
    from uv import find_uv_bin

    done = subprocess.run([find_uv_bin(), "cache", "dir"], capture_output=True, text=True, timeout=30, check=True)
    return done.stdout.strip()


def _explain(step: Step, output: str, rc: int | None) -> str:
    return (
        f"README step `$ {step.command}` (exit {rc})\n--- the README shows:\n{step.expected}--- it printed:\n{output}"
    )


def _run(step: Step, cwd: Path, env: dict[str, str]) -> None:
    deadline = time.monotonic() + step.until_s
    while True:
        done = subprocess.run(
            ["bash", "-c", step.command],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=COMMAND_TIMEOUT_S,
        )
        output = done.stdout.decode(errors="replace")
        if done.returncode == 0 and step.matches(output):
            return
        if time.monotonic() >= deadline:
            pytest.fail(_explain(step, output, done.returncode))
        time.sleep(0.5)


def _start(step: Step, cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", "-c", step.command], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 90
    while True:
        output = log.read_text(errors="replace")
        if step.matches(output):
            return proc
        if proc.poll() is not None or time.monotonic() >= deadline:
            _stop(proc)
            pytest.fail(_explain(step, output, proc.poll()))
        time.sleep(0.3)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C, as the README says
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_the_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    walk = parse((REPO / "README.md").read_text())
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "home").mkdir()
    for folder in ("pipelines", "examples"):  # what a reader has in their clone of this repository
        shutil.copytree(REPO / folder, work / folder, ignore=shutil.ignore_patterns("__pycache__"))
    env = _env(tmp_path)
    background: list[subprocess.Popen[bytes]] = []
    try:
        for i, step in enumerate(walk.steps):
            if step.background:
                background.append(_start(step, work, env, tmp_path / f"background-{i}.log"))
            else:
                _run(step, work, env)
        _the_running_stack(work / ".relaunch", work, env)
    finally:
        for proc in background:
            _stop(proc)
    assert [proc.returncode for proc in background] == [0], "Ctrl-C did not stop `relaunch up` cleanly"
    assert not (work / ".relaunch" / "stack.json").exists()


def _the_running_stack(home: Path, cwd: Path, env: dict[str, str]) -> None:
    """What the walkthrough's `relaunch up` (no secret in its environment) made, checked while it runs: the webhook
    secret it created is private and never printed, a second `up` is refused, and a push no spec watches is named."""
    secret_file = home / "secrets" / "github_webhook_secret"
    assert oct(secret_file.stat().st_mode & 0o777) == "0o600"
    assert oct(secret_file.parent.stat().st_mode & 0o777) == "0o700"
    command = [sys.executable, "-m", "relaunch"]
    sent = subprocess.run(
        [*command, "simulate", "push", "--repo-dir", "digits", "--full-name", "someone/else"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
    )  # fmt: skip
    assert sent.returncode == 0 and sent.stdout.startswith("202 "), sent.stdout + sent.stderr
    assert "no pipeline watches someone/else" in sent.stdout
    assert secret_file.read_text() not in sent.stdout + sent.stderr
    second = subprocess.run([*command, "up"], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 1 and "already runs" in second.stderr and "Traceback" not in second.stderr
