"""The embedded stack with its bus on the Pub/Sub emulator and its store on the Firestore emulator (RELAUNCH_BUS=pubsub,
RELAUNCH_STORE=firestore), training, registry and endpoint local: a mix `relaunch up` supports.

The stack creates the topics and a push subscription to each of its functions; one push must be accepted, its
commands pushed by the emulator to the orchestrator, and its run kept in Firestore until it trains and is
evaluated. (The whole story on the GCP adapters is tests/e2e/test_demo_gcp_emulated.py.)
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from relaunch.adapters.gcp.firestore_store import FirestoreRunStore
from relaunch.bootstrap import App, embedded_stack
from relaunch.demo import DEMO_REPO, demo_specs, make_repo
from relaunch.domain.model import RunState
from relaunch.settings import Settings
from relaunch.simulate import push_payload, send_github
from tests import emulators

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Both emulators running, the environment pointing the stack at them; yields the project id."""
    project = f"relaunch-e2e-{uuid.uuid4().hex[:12]}"
    with emulators.running("pubsub", project=project) as pubsub, emulators.running("firestore", project=project) as fs:
        for name, value in {**pubsub.env, **fs.env}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("RELAUNCH_BUS", "pubsub")
        monkeypatch.setenv("RELAUNCH_STORE", "firestore")
        monkeypatch.setenv("RELAUNCH_GCP_PROJECT", project)
        yield project


def test_a_push_is_carried_by_pubsub_and_its_run_lives_in_firestore(env: str, tmp_path: Path) -> None:
    repo = make_repo(ROOT / "examples" / "digits", tmp_path / "digits")
    settings = Settings(
        home=tmp_path / "home",
        pipelines_dir=demo_specs(ROOT / "pipelines", tmp_path / "pipelines", repo),
        github_webhook_secret=SecretStr(secrets.token_hex(16)),
    )
    with embedded_stack(settings) as stack:
        payload = push_payload(repo, full_name=DEMO_REPO)
        reply = send_github(stack.url_of("github_webhook"), "push", payload, stack.settings.webhook_secret() or "")
        assert reply.status_code == 202, reply.text
        [run_id] = reply.json()["runs"]
        app = App(stack.settings)
        assert isinstance(app.store, FirestoreRunStore)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            run = app.store.get_run(run_id)
            if run is not None and run.state in (RunState.EVALUATING, RunState.GATED) or (run and run.state.terminal):
                break
            time.sleep(0.1)
        assert run is not None and run.state not in (RunState.RECEIVED, RunState.BUILDING, RunState.TRAINING)
        assert run.state is not RunState.FAILED, run.reason
        app.store.close()
    home = stack.settings.home
    assert not stack.settings.bus_path.exists() and not stack.settings.store_path.exists(), sorted(home.iterdir())
