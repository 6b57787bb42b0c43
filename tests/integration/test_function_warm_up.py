"""The warm-up request of the embedded stack (functions/warm_up.py), served by functions-framework in process: it
builds the function's services and writes nothing; only a process the stack started (RELAUNCH_WARM_UP_PATH set)
answers it, and every other request is served as before."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import functions_framework
import pytest
from pydantic import SecretStr

from relaunch import bootstrap
from relaunch.settings import Settings
from relaunch.simulate import github_headers
from tests.fakes import FakeEndpoint

ROOT = Path(__file__).resolve().parents[2]
SOURCE = str(ROOT / "src" / "relaunch" / "functions" / "main.py")
WARM_UP = "/_relaunch/warm-up"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[bootstrap.App]:
    settings = Settings(home=tmp_path, pipelines_dir=ROOT / "pipelines", github_webhook_secret=SecretStr("s"))
    built = bootstrap.App(settings, overrides={"endpoint": FakeEndpoint()})
    bootstrap.use(built)
    yield built
    bootstrap.use(None)


def test_the_warm_up_builds_the_services_and_writes_nothing(
    app: bootstrap.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAUNCH_WARM_UP_PATH", WARM_UP)
    for function, built in (("github_webhook", ["ingest"]), ("orchestrator", ["orchestrator"]), ("reconcile", [])):
        reply = functions_framework.create_app(function, SOURCE).test_client().get(WARM_UP)
        assert (reply.status_code, reply.json) == (200, {"warm": True, "built": built}), function
    assert {"ingest", "orchestrator"} <= set(vars(app))  # built: cached on the App
    assert isinstance(app.endpoint, FakeEndpoint) and app.endpoint.calls == []  # read ahead, changed nothing
    assert app.store.list_deliveries() == [] and app.store.list_runs() == [] and app.store.list_dead_letters() == []
    body = b'{"zen": "warm"}'  # a delivery beside it is served as always
    webhook = functions_framework.create_app("github_webhook", SOURCE).test_client()
    assert webhook.post("/", data=body, headers=github_headers("ping", body, "wrong")).status_code == 401


def test_a_function_the_stack_did_not_start_has_no_warm_up(app: bootstrap.App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELAUNCH_WARM_UP_PATH", raising=False)
    reply = functions_framework.create_app("orchestrator", SOURCE).test_client().get(WARM_UP)
    assert reply.status_code != 200 and "orchestrator" not in vars(app)


def test_a_warm_up_that_cannot_build_says_503_and_the_stack_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAUNCH_WARM_UP_PATH", WARM_UP)
    broken = tmp_path / "pipelines"
    broken.mkdir()
    (broken / "bad.yaml").write_text("name: [unclosed\n")
    bootstrap.use(bootstrap.App(Settings(home=tmp_path, pipelines_dir=broken, github_webhook_secret=SecretStr("s"))))
    try:
        reply = functions_framework.create_app("github_webhook", SOURCE).test_client().get(WARM_UP)
    finally:
        bootstrap.use(None)
    assert (reply.status_code, reply.json) == (503, {"warm": False})
