"""Canary rollouts on the real embedded stack: promoted on healthy traffic, rolled back on a faulty model (its folder
holds a relaunch_fault.json written by examples/digits/train.py), then `relaunch rollback` by hand. The reconcile
tick comes from the stack's own timer."""

from __future__ import annotations

import json
import secrets
import shutil
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml
from pydantic import SecretStr

from relaunch.bootstrap import App, embedded_stack
from relaunch.demo import DEMO_REPO, make_repo, project_root
from relaunch.domain.model import PipelineRun, RunState
from relaunch.settings import Settings
from relaunch.simulate import git, push_payload, send_github
from tests.e2e.push_stack import PUSH_FUNCTIONS

pytestmark = pytest.mark.e2e
ROOT = project_root()


def canary_spec(folder: Path) -> Path:
    spec = yaml.safe_load((ROOT / "pipelines" / "digits.yaml").read_text())
    health = {"min_requests": 5, "max_error_rate": 0.05, "max_p95_latency_ms": 2000}
    spec["rollout"] = {"strategy": "canary", "percent": 50, "bake_s": 2, "max_bake_s": 60, "health": health}
    spec["source"]["clone_url"] = (folder.parent / "digits").resolve().as_uri()  # a run clones only its spec's URL
    folder.mkdir()
    (folder / "digits.yaml").write_text(yaml.safe_dump(spec))
    return folder


class Traffic:
    """Predictions against the endpoint from a background thread, as production traffic would come."""

    def __init__(self, url: str) -> None:
        self.url, self.stopped, self.sent = url + "/v1/endpoints/digits:predict", threading.Event(), 0
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        with requests.Session() as session:
            while not self.stopped.wait(0.02):
                try:
                    session.post(self.url, json={"instances": [[0.0] * 64]}, timeout=5)
                    self.sent += 1
                except requests.RequestException:
                    pass


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    work = tmp_path_factory.mktemp("rollout")
    settings = Settings(
        home=work / "home",
        pipelines_dir=canary_spec(work / "pipelines"),
        github_webhook_secret=SecretStr(secrets.token_hex(16)),
        reconcile_interval_s=0.3,
    )
    stack = embedded_stack(settings, functions=PUSH_FUNCTIONS).start()
    traffic = Traffic(stack.urls["endpoint"].rstrip("/"))
    try:
        repo = make_repo(ROOT / "examples" / "digits", work / "digits")
        yield stack, repo, App(stack.settings), traffic
    finally:
        traffic.stopped.set()
        stack.stop()
        shutil.rmtree(work / "digits", ignore_errors=True)


def push(stack, repo: Path, app: App, params: dict | None = None) -> PipelineRun:  # type: ignore[no-untyped-def]
    before = None
    if params is not None:
        before = git(repo, "rev-parse", "HEAD")
        (repo / "params.json").write_text(json.dumps(params) + "\n")
        git(repo, "commit", "-qam", f"params {params}")
    reply = send_github(
        stack.url_of("github_webhook"),
        "push",
        push_payload(repo, full_name=DEMO_REPO, before=before),
        stack.settings.webhook_secret() or "",
    )
    assert reply.status_code == 202, reply.text
    run_id = reply.json()["runs"][0]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = app.store.get_run(run_id)
        if run is not None and run.state.terminal:
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish: {app.store.get_run(run_id)}")


def test_the_stack_reports_ready_warm_and_its_warm_up_wrote_nothing(world) -> None:  # type: ignore[no-untyped-def]
    """Before any push (this module's first test): the orchestrator and the webhook built, in their own processes,
    what their first delivery would, and the agent takes jobs (each says so in its log before the stack reported
    ready); the warm-up left no delivery, run or dead letter behind. (The first push's overhead: benchmarks/e2e.py.)"""
    stack, _, app, _ = world
    logs = stack.settings.home / "logs" / "functions"
    assert "warm-up: built orchestrator" in (logs / "orchestrator.log").read_text()
    assert "warm-up: built ingest" in (logs / "github_webhook.log").read_text()
    assert "local agent ready" in (stack.settings.home / "logs" / "agent.log").read_text()  # taking jobs already
    assert app.store.list_deliveries() == [] and app.store.list_runs() == [] and app.store.list_dead_letters() == []


def test_canary_promoted_rolled_back_and_rolled_back_by_hand(world, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    stack, repo, app, traffic = world
    first = push(stack, repo, app)
    assert first.state is RunState.PROMOTED and first.model_version == "v1"  # nothing to compare a canary with
    traffic.thread.start()

    second = push(stack, repo, app, {"C": 1.0, "max_iter": 2001})
    assert second.state is RunState.PROMOTED and second.model_version == "v2", second.reason
    assert second.rollout is not None and second.rollout.previous_version == "v1"
    notes = [e.message for e in app.store.timeline(second.id) if e.kind == "rollout"]
    assert any(n.startswith("set_traffic: canary: v2 takes 50%") for n in notes)
    assert any(n.startswith("promote: canary healthy") for n in notes)
    assert app.endpoint.traffic("digits") == {"v2": 100}

    faulty = push(stack, repo, app, {"C": 1.0, "max_iter": 2002, "fault": {"error_rate": 1.0}})
    assert faulty.state is RunState.ROLLED_BACK and "unhealthy" in faulty.reason and "back to v2" in faulty.reason
    assert app.endpoint.traffic("digits") == {"v2": 100} and app.registry.champion("digits").version == "v2"
    statuses = [
        (e.data["state"], e.data["description"]) for e in app.store.timeline(faulty.id) if e.kind == "github.status"
    ]
    assert statuses[-1][0] == "failure" and "Rolled back" in statuses[-1][1]

    from relaunch.cli import main

    monkeypatch.setenv("RELAUNCH_HOME", str(stack.settings.home))
    monkeypatch.setenv("RELAUNCH_PIPELINES_DIR", str(stack.settings.pipelines_dir))
    assert main(["rollback", "digits"]) == 0
    assert "rolled back by hand to v1" in capsys.readouterr().out
    assert app.endpoint.traffic("digits") == {"v1": 100} and app.registry.champion("digits").version == "v1"
    assert main(["rollback", "digits"]) == 1
    assert "nothing to roll back" in capsys.readouterr().err
