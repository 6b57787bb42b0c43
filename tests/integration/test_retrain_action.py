"""The `retrain` action's script against the real github_webhook (functions-framework on loopback) and the Pub/Sub
emulator, and the reusable workflow's smoke step run on examples/digits."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import functions_framework
import pytest
import yaml
from pydantic import SecretStr

from relaunch import bootstrap
from relaunch.adapters.local.stack import EmbeddedStack, free_port
from relaunch.bootstrap import App, embedded_stack
from relaunch.domain.model import PipelineRun
from relaunch.settings import Settings
from relaunch.triggers.github import WorkflowDispatchEvent, parse_github
from relaunch.triggers.pubsub import from_cloudevent_data
from relaunch.triggers.retrain import parse_retrain
from tests import emulators
from tests.loopback import loopback_server

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "github-actions" / "retrain" / "send_retrain.py"
FUNCTIONS_SOURCE = str(ROOT / "src" / "relaunch" / "functions" / "main.py")
DIGITS = ROOT / "examples" / "digits"
SECRET = "retrain-action-secret-7c1f"
TOKEN = "ya29.not-a-real-access-token-55e2"
PROJECT = "retrain-action-test"
REPO = "relaunch-demo/digits"  # pipelines/digits.yaml watches it
SHA = "3f786850e387550fdab836ed7e6dc881de23001b"  # the commit the workflow runs on (GITHUB_SHA)


def github_env(tmp_path: Path, run_id: str, **extra: str) -> dict[str, str]:
    """A step's environment as GitHub Actions sets it (this machine's own GITHUB_*/RETRAIN_* removed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RETRAIN_"))}
    return env | {
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_SHA": SHA,
        "GITHUB_RUN_ID": run_id,
        "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_ACTOR": "octocat",
        "GITHUB_WORKFLOW_REF": f"{REPO}/.github/workflows/train.yml@refs/heads/main",
        "GITHUB_OUTPUT": str(tmp_path / f"output-{run_id}"),
        "RETRAIN_BACKOFF": "0",
        **extra,
    }


def send(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)


def outputs(env: dict[str, str]) -> dict[str, str]:
    lines = Path(env["GITHUB_OUTPUT"]).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


# -- webhook mode, against github_webhook served by functions-framework ----------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    home = tmp_path_factory.mktemp("home")
    settings = Settings(home=home, pipelines_dir=ROOT / "pipelines", github_webhook_secret=SecretStr(SECRET))
    with embedded_stack(settings, functions=("github_webhook",)) as running:
        yield running


def runs_of(stack: EmbeddedStack, delivery_id: str) -> list[PipelineRun]:
    runs = App(stack.settings).store.list_runs(pipeline="digits", limit=500)
    return [run for run in runs if run.trigger.delivery_key == f"github:{delivery_id}"]


def test_a_signed_dispatch_starts_one_manual_run_even_when_sent_twice(stack: EmbeddedStack, tmp_path: Path) -> None:
    env = github_env(tmp_path, "9001", RETRAIN_SECRET=SECRET, RETRAIN_URL=stack.url_of("github_webhook"))
    args = ("--pipeline", "digits", "--reason", "nightly data refresh", "--priority", "42")
    first = send(env, *args)
    assert first.returncode == 0, first.stderr
    sent = outputs(env)
    assert sent["outcome"] == "accepted" and sent["request-id"] == "9001-1-digits"
    (run,) = runs_of(stack, sent["delivery-id"])
    assert sent["runs"] == run.id and f"started run(s) {run.id}" in first.stdout
    trigger = run.trigger
    assert (trigger.kind, trigger.reason, trigger.priority) == ("manual", "nightly data refresh", 42)
    assert (trigger.repo, trigger.ref, trigger.actor) == (REPO, "refs/heads/main", "octocat")
    assert trigger.sha == SHA  # the commit the workflow ran on (its smoke test), not the branch's head later

    again = send(env, *args)  # a re-run step of the same workflow run attempt
    assert again.returncode == 0, again.stderr
    assert "already sent" in again.stdout and outputs(env)["outcome"] == "duplicate"
    assert [r.id for r in runs_of(stack, sent["delivery-id"])] == [run.id]
    delivery = App(stack.settings).store.get_delivery(f"github:{sent['delivery-id']}")
    assert delivery is not None and delivery.headers["X-Hub-Signature-256"] == "[redacted]"


def test_a_new_run_attempt_is_a_new_request(stack: EmbeddedStack, tmp_path: Path) -> None:
    env = github_env(tmp_path, "9002", RETRAIN_SECRET=SECRET, RETRAIN_URL=stack.url_of("github_webhook"))
    assert send(env, "--pipeline", "digits").returncode == 0
    first = outputs(env)["delivery-id"]
    retried = send(env | {"GITHUB_RUN_ATTEMPT": "2"}, "--pipeline", "digits")
    assert retried.returncode == 0, retried.stderr
    second = outputs(env)["delivery-id"]  # the outputs file gets the second step's lines last
    assert second != first and len(runs_of(stack, first)) == len(runs_of(stack, second)) == 1


def test_a_wrong_secret_fails_the_step_with_relaunchs_answer(stack: EmbeddedStack, tmp_path: Path) -> None:
    wrong = "not-the-secret-0b9d"
    env = github_env(tmp_path, "9003", RETRAIN_SECRET=wrong, RETRAIN_URL=stack.url_of("github_webhook"))
    result = send(env | {"GITHUB_ACTIONS": "true"}, "--pipeline", "digits")
    assert result.returncode == 1
    assert result.stderr.startswith("::error title=relaunch retrain::relaunch answered 401: X-Hub-Signature-256")
    assert wrong not in result.stdout + result.stderr and SECRET not in result.stdout + result.stderr
    assert not Path(env["GITHUB_OUTPUT"]).exists()


def test_an_unknown_pipeline_fails_the_step_naming_the_input(stack: EmbeddedStack, tmp_path: Path) -> None:
    env = github_env(tmp_path, "9004", RETRAIN_SECRET=SECRET, RETRAIN_URL=stack.url_of("github_webhook"))
    result = send(env, "--pipeline", "nope")
    assert result.returncode == 1 and "relaunch answered 422" in result.stderr
    assert "field inputs.pipeline" in result.stderr


# -- refusals before sending, retries --------------------------------------------------------------------------


class Recorder(BaseHTTPRequestHandler):
    """Records each POST; answers with the next scripted (status, body), then 202 accepted."""

    received: list[tuple[dict[str, str], bytes]] = []
    script: list[tuple[int, dict[str, Any]]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        status, answer = (
            type(self).script.pop(0) if type(self).script else (202, {"outcome": "accepted", "runs": ["r"]})
        )
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, type[Recorder]]]:
    handler = type("Scripted", (Recorder,), {"received": [], "script": []})
    with loopback_server(handler) as url:
        yield url, handler


@pytest.mark.parametrize(
    ("args", "extra", "message"),
    [
        (("--priority", "101"), {}, "priority must be from 0 to 100, got 101"),
        (("--priority", "high"), {}, "priority must be an integer from 0 to 100, got 'high'"),
        (("--mode", "carrier-pigeon"), {}, "mode must be webhook or pubsub"),
        (("--pipeline", "Digits!"), {}, "pipeline must be a pipeline name"),
        ((), {"RETRAIN_SECRET": ""}, "secret is required in webhook mode (RETRAIN_SECRET)"),
        ((), {"GITHUB_RUN_ID": ""}, "run_id is required"),
        (("--mode", "pubsub", "--project", "p-1234"), {}, "token is required in pubsub mode"),
    ],
)
def test_bad_inputs_are_refused_before_anything_is_sent(
    recorder: tuple[str, type[Recorder]], tmp_path: Path, args: tuple[str, ...], extra: dict[str, str], message: str
) -> None:
    url, handler = recorder
    env = github_env(tmp_path, "1", **{"RETRAIN_SECRET": SECRET, "RETRAIN_URL": url, **extra})
    result = send(env, "--endpoint", url, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and "(nothing was sent)" in result.stderr
    assert handler.received == []


def test_transient_failures_are_retried_with_the_same_delivery(
    recorder: tuple[str, type[Recorder]], tmp_path: Path
) -> None:
    url, handler = recorder
    handler.script = [(503, {"error": "overloaded"}), (500, {"error": "boom"})]
    result = send(github_env(tmp_path, "77", RETRAIN_SECRET=SECRET, RETRAIN_URL=url), "--pipeline", "digits")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("retrying") == 2 and len(handler.received) == 3
    bodies = {body for _, body in handler.received}
    deliveries = {headers["x-github-delivery"] for headers, _ in handler.received}
    assert len(bodies) == len(deliveries) == 1
    headers, body = handler.received[-1]
    event = parse_github(headers, body, secret=SECRET)  # relaunch's own parser verifies what was sent
    assert isinstance(event, WorkflowDispatchEvent) and event.inputs["pipeline"] == "digits"


def test_an_unreachable_url_fails_after_its_attempts(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    env = github_env(tmp_path, "78", RETRAIN_SECRET=SECRET, RETRAIN_URL=url, RETRAIN_ATTEMPTS="2")
    result = send(env)
    assert result.returncode == 1 and f"cannot reach {url} after 2 attempt(s)" in result.stderr


# -- pubsub mode, against the Pub/Sub emulator -----------------------------------------------------------------


@pytest.fixture(scope="module")
def pubsub() -> Iterator[str]:
    with emulators.running("pubsub", project=PROJECT) as emulator:
        rest(emulator.url, "PUT", f"/v1/projects/{PROJECT}/topics/relaunch-commands", {})
        subscription = {"topic": f"projects/{PROJECT}/topics/relaunch-commands"}
        rest(emulator.url, "PUT", f"/v1/projects/{PROJECT}/subscriptions/probe", subscription)
        yield emulator.url


def rest(base: str, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return dict(json.loads(answer.read() or b"{}"))


def pull(base: str) -> list[dict[str, Any]]:
    # returnImmediately is deprecated on Pub/Sub itself, but keeps the emulator from holding an empty pull open.
    ask = {"maxMessages": 10, "returnImmediately": True}
    got = rest(base, "POST", f"/v1/projects/{PROJECT}/subscriptions/probe:pull", ask)
    received = got.get("receivedMessages", [])
    if received:
        ack = {"ackIds": [m["ackId"] for m in received]}
        rest(base, "POST", f"/v1/projects/{PROJECT}/subscriptions/probe:acknowledge", ack)
    return [m["message"] for m in received]


def test_pubsub_mode_publishes_the_retrain_command(pubsub: str, tmp_path: Path) -> None:
    env = github_env(tmp_path, "5150", RETRAIN_TOKEN=TOKEN, RETRAIN_ENDPOINT=pubsub, RETRAIN_PROJECT=PROJECT)
    result = send(env, "--mode", "pubsub", "--pipeline", "digits", "--reason", "drift seen", "--priority", "50")
    assert result.returncode == 0, result.stderr
    assert TOKEN not in result.stdout + result.stderr
    (message,) = pull(pubsub)
    assert message["messageId"] == outputs(env)["message-id"]
    data = json.loads(base64.b64decode(message["data"]))
    assert data == {
        "type": "retrain",
        "repo": REPO,
        "ref": "refs/heads/main",
        "sha": SHA,
        "pipeline": "digits",
        "reason": "drift seen",
        "priority": 50,
        "requested_by": "octocat",
        "request_id": "5150-1-digits",
    }
    assert message["attributes"] == {"type": "retrain", "request_id": "5150-1-digits"}
    # relaunch's reader of the commands topic accepts it (guarded: it landed with the retrain command itself).
    request = parse_retrain(from_cloudevent_data({"message": message}))
    assert (request.repo, request.ref, request.requested_by, request.request_id) == (
        REPO,
        "refs/heads/main",
        "octocat",
        "5150-1-digits",
    )
    assert request.inputs == {
        "pipeline": "digits",
        "reason": "drift seen",
        "priority": "50",
        "sha": SHA,
        "force": "false",
    }


def test_pubsub_errors_fail_the_step_with_pubsubs_message(pubsub: str, tmp_path: Path) -> None:
    env = github_env(tmp_path, "5151", RETRAIN_TOKEN=TOKEN, RETRAIN_ENDPOINT=pubsub, RETRAIN_PROJECT=PROJECT)
    result = send(env, "--mode", "pubsub", "--topic", "no-such-topic")
    assert result.returncode == 1 and "Pub/Sub answered 404" in result.stderr
    assert TOKEN not in result.stdout + result.stderr and pull(pubsub) == []


def eventarc(message: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    """A pulled message as Eventarc pushes it to the orchestrator (binary-mode CloudEvent)."""
    source = f"//pubsub.googleapis.com/projects/{PROJECT}/topics/relaunch-commands"
    headers = {"ce-id": message["messageId"], "ce-specversion": "1.0", "ce-source": source}
    headers |= {"ce-type": "google.cloud.pubsub.topic.v1.messagePublished", "Content-Type": "application/json"}
    body = {"message": message, "subscription": f"projects/{PROJECT}/subscriptions/probe"}
    return headers, json.dumps(body).encode()


def test_the_orchestrator_starts_one_run_for_the_command_even_when_sent_twice(pubsub: str, tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path / "home", pipelines_dir=ROOT / "pipelines", github_webhook_secret=SecretStr(SECRET)
    )
    app = App(settings)
    env = github_env(tmp_path, "5152", RETRAIN_TOKEN=TOKEN, RETRAIN_ENDPOINT=pubsub, RETRAIN_PROJECT=PROJECT)
    bootstrap.use(app)
    try:
        orchestrator = functions_framework.create_app("orchestrator", FUNCTIONS_SOURCE).test_client()
        for _ in range(2):  # a re-run step publishes a second message with the same request id
            assert send(env, "--mode", "pubsub", "--pipeline", "digits", "--priority", "7").returncode == 0
            (message,) = pull(pubsub)
            headers, body = eventarc(message)
            assert 200 <= orchestrator.post("/", data=body, headers=headers).status_code < 300
    finally:
        bootstrap.use(None)
    runs = [r for r in app.store.list_runs(pipeline="digits") if r.trigger.delivery_key == "retrain:5152-1-digits"]
    assert len(runs) == 1 and (runs[0].trigger.kind, runs[0].trigger.priority) == ("manual", 7)
    assert app.store.list_dead_letters() == []


# -- the reusable workflow's smoke step, on examples/digits ----------------------------------------------------


def smoke_step() -> dict[str, Any]:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "relaunch-train.yml").read_text())
    return next(s for s in workflow["jobs"]["smoke"]["steps"] if "RELAUNCH_SMOKE" in s.get("env", {}))


def run_smoke_step(tmp_path: Path, command: str) -> subprocess.CompletedProcess[str]:
    """The workflow's own script, with the env values GitHub would have filled in from the inputs."""
    step = smoke_step()
    filled = {"RELAUNCH_SMOKE_ROWS": "100", "RELAUNCH_SMOKE_STEPS": "20", "SMOKE_COMMAND": command}
    env = {**os.environ, "RELAUNCH_SMOKE": step["env"]["RELAUNCH_SMOKE"], "RUNNER_TEMP": str(tmp_path), **filled}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run(["bash", "-c", step["run"]], cwd=DIGITS, env=env, capture_output=True, text=True, timeout=120)


def test_the_smoke_step_trains_digits_on_a_tiny_slice_fast(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_smoke_step(tmp_path, f"{sys.executable} train.py")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    model = tmp_path / "relaunch-smoke" / "model"
    summary = json.loads((model / "training_summary.json").read_text())
    assert (model / "model.joblib").is_file() and summary["n_train"] == 100
    assert summary["smoke"] == {"rows": 100, "steps": 20} and summary["params"]["max_iter"] == 20
    assert "smoke run: 100 rows, at most 20 iterations" in result.stdout
    assert elapsed < 30, f"a smoke run should take seconds, took {elapsed:.1f}s"


def test_the_smoke_step_fails_when_training_writes_no_model(tmp_path: Path) -> None:
    result = run_smoke_step(tmp_path, "true")
    assert result.returncode == 1 and "wrote nothing to AIP_MODEL_DIR" in result.stdout


def test_a_broken_training_project_fails_the_smoke_run_fast(tmp_path: Path) -> None:
    source = tmp_path / "digits"
    source.mkdir()
    for name in ("train.py", "dataset.py", "storage.py", "tracking.py"):
        (source / name).write_text((DIGITS / name).read_text())
    (source / "params.json").write_text(json.dumps({"C": 1.0, "max_itr": 5}))  # a typo: an unknown key
    env = {
        **os.environ,
        "RELAUNCH_SMOKE": "1",
        "AIP_MODEL_DIR": str(tmp_path / "model"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    result = subprocess.run(
        [sys.executable, "train.py"], cwd=source, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and "unknown parameter(s) in params.json: ['max_itr']" in result.stderr
    assert not (tmp_path / "model").exists()


def test_smoke_mode_refuses_a_bad_setting(tmp_path: Path) -> None:
    env = {**os.environ, "RELAUNCH_SMOKE": "1", "RELAUNCH_SMOKE_ROWS": "lots", "AIP_MODEL_DIR": str(tmp_path)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    result = subprocess.run([sys.executable, "train.py"], cwd=DIGITS, env=env, capture_output=True, text=True)
    assert result.returncode == 1 and "RELAUNCH_SMOKE_ROWS must be a positive integer, got 'lots'" in result.stderr
