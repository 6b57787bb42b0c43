"""A pull request cannot grade itself nor touch the champion: its evaluate.py never runs, the base's does.

The head of the pull request rewrites evaluate.py to claim accuracy 1.0 and to write into RELAUNCH_CHAMPION_DIR
(before the fix, the live registry folder, so the endpoint then failed every prediction). The base commit's
evaluator scores the candidate instead, the registry is byte for byte unchanged and the endpoint keeps serving.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import time
from pathlib import Path

import pytest
import requests
import yaml
from pydantic import SecretStr

from relaunch.bootstrap import App, embedded_stack
from relaunch.demo import project_root
from relaunch.domain.model import PipelineRun, RunState
from relaunch.settings import Settings
from relaunch.simulate import git, pull_request_payload, push_payload, send_github
from tests.e2e.push_stack import PUSH_FUNCTIONS

pytestmark = pytest.mark.e2e
REPO = "relaunch-demo/digits"
ROGUE_EVALUATE = """
import json, os, pathlib
champion = os.environ.get("RELAUNCH_CHAMPION_DIR")
if champion:
    (pathlib.Path(champion) / "pwned.txt").write_text("owned")
    (pathlib.Path(champion) / "model.joblib").write_bytes(b"not a model")
out = pathlib.Path(os.environ["RELAUNCH_EVAL_DIR"])
out.mkdir(parents=True, exist_ok=True)
perfect = {"accuracy": 1.0, "macro_f1": 1.0, "log_loss": 0.0}
(out / "metrics.json").write_text(json.dumps({"candidate": perfect, "champion": perfect, "n_examples": 2}))
(out / "outcomes.json").write_text(json.dumps({"candidate": [1, 1], "champion": [1, 1]}))
"""


def make_repo(dest: Path) -> Path:
    shutil.copytree(project_root() / "examples" / "digits", dest, ignore=shutil.ignore_patterns("__pycache__"))
    git(dest, "init", "-q", "-b", "main")
    git(dest, "config", "user.name", "t")
    git(dest, "config", "user.email", "t@relaunch.invalid")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "Digits classifier")
    return dest


def pipelines_for(repo: Path, dest: Path) -> Path:
    spec = yaml.safe_load((project_root() / "pipelines" / "digits.yaml").read_text())
    spec["source"]["clone_url"] = repo.resolve().as_uri()  # the spec names the source, never a payload
    spec["source"].pop("wandb", None)
    dest.mkdir()
    (dest / "digits.yaml").write_text(yaml.safe_dump(spec))
    return dest


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def follow(app: App, run_id: str, timeout: float = 300.0) -> PipelineRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = app.store.get_run(run_id)
        if run is not None and run.state.terminal:
            return run
        time.sleep(0.1)
    raise TimeoutError(f"run {run_id} did not finish within {timeout:.0f}s")


def send(stack, event: str, payload: dict) -> str:  # type: ignore[no-untyped-def]
    reply = send_github(stack.url_of("github_webhook"), event, payload, stack.settings.webhook_secret() or "")
    assert reply.status_code == 202, reply.text
    (run_id,) = reply.json()["runs"]
    return str(run_id)


def test_a_pull_requests_evaluate_py_neither_grades_itself_nor_touches_the_champion(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "digits")
    home = tmp_path / "home"
    secret = SecretStr(secrets.token_hex(16))
    settings = Settings(
        home=home, pipelines_dir=pipelines_for(repo, tmp_path / "pipelines"), github_webhook_secret=secret
    )
    stack = embedded_stack(settings, functions=PUSH_FUNCTIONS).start()
    try:
        app = App(stack.settings)
        first = follow(app, send(stack, "push", push_payload(repo, full_name=REPO)))
        assert first.state is RunState.PROMOTED, first.reason
        champion = app.registry.champion("digits")
        assert champion is not None
        registry_folder = Path(champion.artifact_uri)
        before = snapshot(registry_folder)
        base = git(repo, "rev-parse", "HEAD")
        git(repo, "checkout", "-qb", "feature")
        (repo / "evaluate.py").write_text(ROGUE_EVALUATE)
        git(repo, "commit", "-qam", "Grade myself")
        pr = follow(app, send(stack, "pull_request", pull_request_payload(repo, full_name=REPO, base="main")))

        assert snapshot(registry_folder) == before and not list(home.rglob("pwned.txt"))
        url = stack.urls["endpoint"].rstrip("/") + "/v1/endpoints/digits:predict"
        answer = requests.post(url, json={"instances": [[0.0] * 64]}, timeout=30)
        assert answer.status_code == 200 and answer.json()["model_version"] == champion.version
        assert pr.decision is not None and pr.decision.candidate["accuracy"] < 1.0  # the base evaluator's score
        assert pr.state is RunState.EVALUATED and pr.reason.startswith("gate ")  # its verdict, never "rejected"
        assert pr.evaluator_sha == base and pr.trigger.sha != base
        check = next(e for e in app.store.timeline(pr.id) if e.kind == "github.check_run")
        assert f"evaluator `{base}`" in check.data["output"]["summary"]
        comment = next(e for e in app.store.timeline(pr.id) if e.kind == "github.pr_comment")  # the PR's one report
        assert comment.data["body"].startswith("<!-- relaunch:report pipeline=digits -->")
        assert f"Head `{(pr.trigger.sha or '')[:7]}`" in comment.data["body"]
    finally:
        stack.stop()
