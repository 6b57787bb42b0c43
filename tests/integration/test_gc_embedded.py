"""`relaunch gc` on a real embedded home: the demo's runs pushed through the stack, then collected (issue 17)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from relaunch.bootstrap import App
from relaunch.demo import project_root, scenario
from relaunch.settings import Settings


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home the demo left: a promoted and a rejected run, their checkouts, outputs and inbox rows."""
    path = tmp_path_factory.mktemp("gc") / "home"
    scenario(path, io.StringIO())
    return path


def relaunch(home: Path, *argv: str, **retain: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RELAUNCH_HOME": str(home), "RELAUNCH_PIPELINES_DIR": str(project_root() / "pipelines")}
    env.update({f"RELAUNCH_RETAIN_{name.upper()}": value for name, value in retain.items()})
    return subprocess.run(
        [sys.executable, "-m", "relaunch", *argv], capture_output=True, text=True, env=env, timeout=120
    )


def test_gc_lists_then_deletes_and_runs_and_replay_still_answer(home: Path) -> None:
    runs = App(Settings(home=home)).store.list_runs()
    keys = [run.trigger.delivery_key for run in runs]
    assert len(runs) == 2 and all((home / "workspaces" / run.id).is_dir() for run in runs)
    policy = {"workspaces": "0", "body_days": "0"}

    dry = relaunch(home, "gc", "--dry-run", "--json", **policy)
    assert dry.returncode == 0, dry.stderr
    listed = json.loads(dry.stdout)
    assert {(r["kind"], r["name"]) for r in listed["removals"]} == {
        *(("workspace", run.id) for run in runs),
        *(("artifacts", run.id) for run in runs),
        *(("body", key) for key in keys),
    }
    assert listed["freed_bytes"] == sum(r["bytes"] for r in listed["removals"]) > 0 and listed["errors"] == []
    assert all((home / "workspaces" / run.id).is_dir() for run in runs)  # a dry run deletes nothing

    done = relaunch(home, "gc", **policy)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "DELETED" and "freed 6 items" in done.stdout
    assert re.search(rf"^workspace +{runs[0].id} +[0-9.]+ KiB +run ", done.stdout, re.M), done.stdout
    assert sorted(p.name for p in (home / "workspaces").iterdir() if not p.name.startswith(".")) == []
    assert not (home / "artifacts" / "runs" / runs[0].id).exists()
    assert relaunch(home, "gc", **policy).stdout.strip() == "nothing to collect"

    listing = relaunch(home, "runs")
    assert listing.returncode == 0 and all(run.id in listing.stdout for run in runs), listing.stderr
    replay = relaunch(home, "replay", keys[0])
    assert replay.returncode == 1 and "Traceback" not in replay.stderr, replay.stderr
    assert "its body was dropped on" in replay.stderr and "RELAUNCH_RETAIN_BODY_DAYS" in replay.stderr
    champion = App(Settings(home=home)).registry.champion("digits")
    assert champion is not None and Path(champion.artifact_uri).is_dir()  # the serving version is untouched
