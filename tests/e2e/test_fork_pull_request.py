"""A pull request from a fork on the real embedded stack: nothing built by default; on approval, only once approved."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from relaunch.adapters.local.stack import EmbeddedStack
from relaunch.bootstrap import App, embedded_stack, with_local_secrets
from relaunch.cli import main
from relaunch.domain.model import PipelineRun, RunState
from relaunch.settings import Settings
from relaunch.simulate import git, pull_request_payload, send_github
from tests.e2e.push_stack import PUSH_FUNCTIONS

pytestmark = pytest.mark.e2e
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits"
SPEC = """
name: digits
source: {{repo: relaunch-demo/digits, branches: [main], clone_url: {clone_url}}}
train: {{command: [python, train.py], timeout_s: 300}}
evaluate: {{command: [python, evaluate.py], timeout_s: 300}}
endpoint: digits
pull_requests: {{forks: {forks}}}
"""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[EmbeddedStack, Path, Path]]:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".relaunch*"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "digits")
    specs, home = tmp_path / "pipelines", tmp_path / "home"
    specs.mkdir()
    (specs / "digits.yaml").write_text(SPEC.format(clone_url=repo.as_uri(), forks="ignore"))
    patch = pytest.MonkeyPatch()
    for name in [k for k in os.environ if k.startswith("RELAUNCH_")]:
        patch.delenv(name)
    patch.setenv("RELAUNCH_HOME", str(home))
    patch.setenv("RELAUNCH_PIPELINES_DIR", str(specs))
    try:
        with embedded_stack(Settings(home=home, pipelines_dir=specs), functions=PUSH_FUNCTIONS) as stack:
            yield stack, repo, specs
    finally:
        patch.undo()


def send_fork_pr(stack: EmbeddedStack, repo: Path, number: int, delivery: str) -> dict:
    payload = pull_request_payload(repo, full_name="relaunch-demo/digits", number=number)
    head = payload["pull_request"]["head"]
    head["repo"] = {**head["repo"], "full_name": "mallory/digits", "clone_url": "file:///tmp/mallory-evil.git"}
    secret = with_local_secrets(Settings()).webhook_secret() or ""
    reply = send_github(stack.urls["github_webhook"], "pull_request", payload, secret, delivery)
    assert reply.status_code == 202, reply.text
    return dict(reply.json())


def state_of(run_id: str, leaving: RunState | None = None, timeout: float = 60) -> PipelineRun:
    """The run once it left RECEIVED (and `leaving`, when given)."""
    store = App(Settings()).store
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = store.get_run(run_id)
        if run is not None and run.state not in (RunState.RECEIVED, leaving):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} stayed put: {store.get_run(run_id)}")


def test_a_fork_pull_request_does_not_build_until_approved(world, capsys) -> None:  # type: ignore[no-untyped-def]
    stack, repo, specs = world
    ignored = send_fork_pr(stack, repo, 7, "fork-1")
    assert ignored["outcome"] == "skipped" and ignored["runs"] == []
    assert "mallory/digits" in ignored["skipped"]["digits"]

    (specs / "digits.yaml").write_text(SPEC.format(clone_url=repo.as_uri(), forks="on_approval"))
    time.sleep(1.1)  # the spec cache looks at the folder at most once a second
    (run_id,) = send_fork_pr(stack, repo, 8, "fork-2")["runs"]
    waiting = state_of(run_id)
    assert waiting.state is RunState.AWAITING_APPROVAL and waiting.image is None and waiting.jobs == {}
    assert not any(run_id in p.name for p in stack.settings.workspaces_dir.glob("*"))  # nothing was checked out

    assert main(["approve", run_id]) == 0
    assert "approved" in capsys.readouterr().out
    moved = state_of(run_id, leaving=RunState.AWAITING_APPROVAL)
    assert moved.state is not RunState.AWAITING_APPROVAL
    entries = App(Settings()).store.timeline(run_id)
    assert any(e.kind == "approval" and "(relaunch approve)" in e.message for e in entries)
    assert (App(Settings()).store.get_effect(run_id, "approval") or {})["sha"] == waiting.trigger.sha
