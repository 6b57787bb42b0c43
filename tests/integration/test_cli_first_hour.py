"""What a new user meets in their first hour with the CLI (issue 17), each seen with the command that showed it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from relaunch.bootstrap import App
from relaunch.domain.model import Delivery, PipelineRun, TimelineEntry, Trigger
from relaunch.settings import Settings


def test_a_closed_pipe_ends_the_output_quietly(tmp_path: Path) -> None:
    """`relaunch runs show ID | head -1`: the reader stops early; no BrokenPipeError traceback follows."""
    store = App(Settings(home=tmp_path)).store
    run = PipelineRun(id="run-1", pipeline="digits", trigger=Trigger(kind="push", delivery_key="d1", sha="a" * 40))
    store.record_delivery(Delivery(key="d1", source="github", run_ids=["run-1"]), [run])
    for n in range(3000):  # far more than a pipe's buffer holds
        store.append_timeline("run-1", TimelineEntry(kind="note", message=f"line {n} " + "x" * 60))
    env = {**os.environ, "RELAUNCH_HOME": str(tmp_path)}
    shown = subprocess.Popen(
        [sys.executable, "-m", "relaunch", "runs", "show", "run-1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert shown.stdout is not None and shown.stderr is not None
    shown.stdout.readline()
    shown.stdout.close()  # what `head -1` does once it has its line
    errors = shown.stderr.read().decode()
    shown.wait(30)
    assert "Traceback" not in errors and "BrokenPipeError" not in errors, errors


def test_up_refuses_to_start_without_its_pipelines_folder(tmp_path: Path) -> None:
    """Started from another directory, `relaunch up` used to run with no pipeline at all."""
    missing = tmp_path / "pipelines"
    env = {**os.environ, "RELAUNCH_HOME": str(tmp_path / "home"), "RELAUNCH_PIPELINES_DIR": str(missing)}
    done = subprocess.run(
        [sys.executable, "-m", "relaunch", "up"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert str(missing) in done.stderr and "RELAUNCH_PIPELINES_DIR" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "home" / "stack.json").exists()


def test_an_unknown_inbox_source_is_an_error_listing_the_known_ones(tmp_path: Path) -> None:
    """`relaunch inbox --source build` printed nothing and exited 0: the source is called `cloudbuild`."""
    env = {**os.environ, "RELAUNCH_HOME": str(tmp_path)}
    App(Settings(home=tmp_path)).store.record_delivery(Delivery(key="d1", source="cloudbuild"), [])
    for argv in (["inbox", "--source", "build"], ["inbox", "--dead", "--source", "build"]):
        done = subprocess.run([sys.executable, "-m", "relaunch", *argv], capture_output=True, text=True, env=env)
        assert done.returncode == 2 and "cloudbuild" in done.stderr and "build" in done.stderr, done.stderr
    known = subprocess.run(
        [sys.executable, "-m", "relaunch", "inbox", "--source", "cloudbuild"], capture_output=True, text=True, env=env
    )
    assert known.returncode == 0 and "d1" in known.stdout
    topic = subprocess.run(  # the orchestrator dead-letters under its topic's name
        [sys.executable, "-m", "relaunch", "inbox", "--dead", "--source", "relaunch-commands"], capture_output=True,
        text=True, env=env,
    )  # fmt: skip
    assert topic.returncode == 0, topic.stderr
