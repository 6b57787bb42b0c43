"""`gate.approval: required` on the real embedded stack: a passed run waits; `relaunch approve` promotes it,
`relaunch reject` rejects the next one with its reason."""

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
from relaunch.simulate import git, push_payload, send_github
from tests.e2e.push_stack import PUSH_FUNCTIONS

pytestmark = pytest.mark.e2e
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits"
SPEC = """
name: digits
source: {{repo: relaunch-demo/digits, branches: [main], clone_url: {clone_url}}}
train: {{command: [python, train.py], timeout_s: 300}}
evaluate: {{command: [python, evaluate.py], timeout_s: 300}}
gate: {{floors: {{accuracy: 0.5}}, max_regression: {{accuracy: 0.5}}, approval: required, approval_timeout: 72h}}
endpoint: digits
"""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[EmbeddedStack, Path]]:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".relaunch*"))
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "digits")
    specs, home = tmp_path / "pipelines", tmp_path / "home"
    specs.mkdir()
    (specs / "digits.yaml").write_text(SPEC.format(clone_url=repo.as_uri()))
    patch = pytest.MonkeyPatch()
    for name in [k for k in os.environ if k.startswith("RELAUNCH_")]:
        patch.delenv(name)
    patch.setenv("RELAUNCH_HOME", str(home))
    patch.setenv("RELAUNCH_PIPELINES_DIR", str(specs))
    try:
        with embedded_stack(Settings(home=home, pipelines_dir=specs), functions=PUSH_FUNCTIONS) as stack:
            yield stack, repo
    finally:
        patch.undo()


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", message)


def push(stack: EmbeddedStack, repo: Path, delivery: str) -> str:
    secret = with_local_secrets(Settings()).webhook_secret() or ""
    payload = push_payload(repo, full_name="relaunch-demo/digits")
    reply = send_github(stack.urls["github_webhook"], "push", payload, secret, delivery)
    assert reply.status_code == 202, reply.text
    (run_id,) = reply.json()["runs"]
    return str(run_id)


def settled(run_id: str, *, timeout: float = 240) -> PipelineRun:
    """The run once it waits for approval or has ended."""
    store = App(Settings()).store
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = store.get_run(run_id)
        if run is not None and (run.state is RunState.AWAITING_APPROVAL or run.state.terminal):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} never settled: {store.get_run(run_id)}")


def test_a_gated_run_waits_then_approve_promotes_and_reject_rejects(world, capsys) -> None:  # type: ignore[no-untyped-def]
    stack, repo = world
    first = settled(push(stack, repo, "p-1"))
    assert first.state is RunState.AWAITING_APPROVAL and first.awaiting == "promotion"
    assert App(Settings()).registry.champion("digits") is None

    assert main(["approve", first.id]) == 0
    assert "rolls out next" in capsys.readouterr().out
    promoted = settled_past(first.id)
    assert promoted.state is RunState.PROMOTED
    champion = App(Settings()).registry.champion("digits")
    assert champion is not None and champion.run_id == first.id

    (repo / "NOTES.md").write_text("a second commit\n")
    commit(repo, "second")
    second = settled(push(stack, repo, "p-2"))
    assert second.state is RunState.AWAITING_APPROVAL
    assert main(["reject", second.id, "--reason", "not before the demo"]) == 0
    rejected = settled_past(second.id)
    assert rejected.state is RunState.REJECTED and rejected.reason.endswith("(cli): not before the demo")
    assert "(relaunch reject)" in rejected.reason
    assert App(Settings()).registry.champion("digits").run_id == first.id  # type: ignore[union-attr]
    assert main(["approve", second.id]) == 1 and "rejected, not awaiting approval" in capsys.readouterr().err


def settled_past(run_id: str, timeout: float = 120) -> PipelineRun:
    store = App(Settings()).store
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = store.get_run(run_id)
        if run is not None and run.state.terminal:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} never ended: {store.get_run(run_id)}")
