"""Every inbound path driven by `relaunch simulate` against the real embedded stack (all six functions, the bus,
the agent), checked through `relaunch runs`/`inbox` state: GitHub push/PR/dispatch, W&B, drift, schedule, build."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from relaunch.adapters.local.pyenv import PythonEnvironments
from relaunch.adapters.local.stack import EmbeddedStack
from relaunch.bootstrap import App, embedded_stack
from relaunch.cli import main
from relaunch.domain.model import PipelineRun, RunState
from relaunch.settings import Settings
from relaunch.simulate import git

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "digits"
SPEC = """
name: digits
source:
  repo: relaunch-demo/digits
  branches: [main]
  paths: ["*.py", "params.json"]
  clone_url: {clone_url}
  wandb: {{entity: acme, project: digits, collection: digits-model}}
train: {{command: [python, train.py], timeout_s: 300}}
evaluate: {{command: [python, evaluate.py], timeout_s: 300}}
gate: {{floors: {{accuracy: 0.9}}, max_regression: {{accuracy: 0.005}}}}
endpoint: digits
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedStack, Path, pytest.MonkeyPatch]]:
    work = tmp_path_factory.mktemp("inbound")
    repo = work / "repo"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".relaunch*"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "digits")
    specs = work / "pipelines"
    specs.mkdir()
    (specs / "digits.yaml").write_text(SPEC.format(clone_url=repo.as_uri()))
    home = work / "home"
    patch = pytest.MonkeyPatch()
    for name in [k for k in os.environ if k.startswith("RELAUNCH_")]:
        patch.delenv(name)
    patch.setenv("RELAUNCH_HOME", str(home))
    patch.setenv("RELAUNCH_PIPELINES_DIR", str(specs))
    with embedded_stack(Settings(home=home, pipelines_dir=specs)) as stack:
        yield stack, repo, patch
    patch.undo()


def simulate(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main(["simulate", *args])
    out = capsys.readouterr()
    assert code == 0 and "Traceback" not in out.err, out
    return out.out


def runs_of(reply: str) -> list[str]:
    return list(json.loads(reply.split(" ", 1)[1])["runs"])


def finished(run_id: str, timeout: float = 120) -> PipelineRun:
    store = App(Settings()).store
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = store.get_run(run_id)
        if run is not None and run.state.terminal:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish: {store.get_run(run_id)}")


def delivered(key: str, timeout: float = 30) -> str:
    store = App(Settings()).store
    deadline = time.monotonic() + timeout
    while (row := store.get_delivery(key)) is None:
        assert time.monotonic() < deadline, f"{key} never reached the inbox"
        time.sleep(0.05)
    return row.outcome


def key_of(published: str) -> str:
    return published.rsplit("inbox key ", 1)[1].strip()


def test_github_push_skip_pull_request_and_dispatch(world, capsys) -> None:  # type: ignore[no-untyped-def]
    stack, repo, _ = world
    (repo / "README.md").write_text("docs only\n")
    before = git(repo, "rev-parse", "HEAD")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qam", "docs")
    args = ["--repo-dir", str(repo), "--full-name", "relaunch-demo/digits"]
    skipped = simulate(capsys, "push", *args, "--before", before)
    assert skipped.startswith("202 ") and '"outcome": "skipped"' in skipped
    dispatch = simulate(capsys, "dispatch", "--full-name", "relaunch-demo/digits", "--input", "reason=by hand")
    git(repo, "checkout", "-qb", "feature")
    pr = simulate(capsys, "pr", *args, "--base", "main")
    git(repo, "checkout", "-q", "main")
    manual, review = finished(runs_of(dispatch)[0]), finished(runs_of(pr)[0])
    assert manual.state is RunState.PROMOTED and manual.trigger.sha == git(repo, "rev-parse", "HEAD")
    assert review.state is RunState.EVALUATED and review.reason.startswith("gate ")  # its verdict beside it
    statuses = [e for e in App(Settings()).store.timeline(review.id) if e.kind == "github.status"]
    assert statuses and {e.data["sha"] for e in statuses} == {git(repo, "rev-parse", "feature")}
    assert main(["runs", "--json"]) == 0 and "pull_request" in capsys.readouterr().out


def test_a_wandb_artifact_is_fetched_evaluated_promoted_and_aliased(world, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    model, code = tmp_path / "model", tmp_path / "code"
    shutil.copytree(EXAMPLE, code)  # trained in the environment the example declares, as its evaluation runs in
    prepared = PythonEnvironments(Settings().envs_dir).prepare(code)
    python = Settings().envs_dir / str(prepared.hash) / "bin" / "python"
    env = {**os.environ, "AIP_MODEL_DIR": str(model)}
    subprocess.run([str(python), "train.py"], cwd=code, env=env, check=True, capture_output=True, timeout=120)
    out = simulate(capsys, "wandb", "--artifact", "acme/digits/digits-model", "--model-dir", str(model))
    assert "logged" in out and "acme/digits/digits-model:v0" in out
    run = finished(runs_of(out.splitlines()[-1])[0])
    assert run.state is RunState.PROMOTED and run.trigger.artifact == "acme/digits/digits-model:v0"
    aliases = Settings().wandb_artifacts_dir / "acme" / "digits" / "digits-model" / "aliases.json"
    assert json.loads(aliases.read_text())["production"] == "v0"


def test_pubsub_paths_dead_letters_inbox_and_replay(world, capsys) -> None:  # type: ignore[no-untyped-def]
    stack, _, _ = world
    tick = key_of(simulate(capsys, "schedule", "--pipeline", "digits", "--job", "nightly"))
    drift = key_of(simulate(capsys, "drift", "--pipeline", "digits", "--severity", "critical"))
    assert delivered(tick).startswith("accepted") and delivered(drift).startswith("accepted")
    cooled = key_of(simulate(capsys, "drift", "--pipeline", "digits", "--severity", "critical"))
    assert "cooldown" in delivered(cooled)
    closed = key_of(simulate(capsys, "drift", "--pipeline", "digits", "--state", "closed"))
    assert delivered(closed).startswith("ignored")
    store = App(Settings()).store
    scheduled = finished(store.get_delivery(tick).run_ids[0])  # type: ignore[union-attr]
    assert scheduled.trigger.kind == "schedule" and scheduled.state.terminal
    build = key_of(simulate(capsys, "cloudbuild", "--run", scheduled.id, "--status", "SUCCESS"))
    assert delivered(build).startswith("accepted")
    App(Settings()).bus.publish("relaunch-drift", {"incident": "not an object"})
    deadline = time.monotonic() + 30
    while not store.list_dead_letters():
        assert time.monotonic() < deadline, "the malformed alert was never dead-lettered"
        time.sleep(0.05)
    assert main(["inbox", "--dead"]) == 0 and "incident" in capsys.readouterr().out
    assert main(["inbox", "--source", "drift"]) == 0 and "cooldown" in capsys.readouterr().out
    assert main(["replay", tick]) == 0
    replayed = capsys.readouterr().out
    assert f"{tick}#replay-1" in replayed and scheduled.id not in replayed
    assert main(["replay", "nope"]) == 1 and "no delivery 'nope'" in capsys.readouterr().err
    asked = ["retrain", "--full-name", "relaunch-demo/digits", "--pipeline", "digits", "--request-id", "e2e-1"]
    retrain = key_of(simulate(capsys, *asked, "--reason", "labels fixed"))
    assert retrain == "retrain:e2e-1" and delivered(retrain).startswith("accepted")
    [run_id] = store.get_delivery(retrain).run_ids  # type: ignore[union-attr]
    assert store.get_run(run_id).trigger.reason == "labels fixed"  # type: ignore[union-attr]
    finished(store.get_delivery(drift).run_ids[0])  # type: ignore[union-attr]
    assert finished(run_id).state.terminal
