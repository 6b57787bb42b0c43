"""The gate check run's buttons at GitHub's HTTP boundary: PyGithub against the local api.github.com, the press
through the github_webhook function, signed, and the presser's permission asked of GitHub (never read from the
payload). An allowed sender's Promote rolls the waiting run out; a refused one is told why on the check run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from relaunch import bootstrap
from relaunch.adapters.github.check_runs import GitHubCheckRuns
from relaunch.adapters.github.notifier import GitHubNotifier
from relaunch.domain.commands import parse_command
from relaunch.domain.model import Check, Decision, Delivery, Notification, PipelineRun, RunState, Trigger
from relaunch.simulate import github_headers
from tests.fakes import FakeBlobs, FakeBus, FakeEndpoint, FakeRegistry
from tests.github_server import FakeGitHub, serve
from tests.integration.github.openapi import assert_conforms
from tests.integration.test_functions import client, settings
from tests.unit.test_check_run_buttons import pressed

pytest.importorskip("github", reason="PyGithub is not installed")

TOKEN = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"
REPO = "relaunch-demo/digits"
SHA = "c4295bd74fb0f4fda03689c3df3f2803b658fd85"
RUN = "digits-00000000a1"
REPORT = "## relaunch gate: passed\n\n| metric | candidate | champion |\n|---|---|---|\n| accuracy | 0.97 | - |"
SPEC = """
name: digits
source: {repo: relaunch-demo/digits, branches: [main]}
train: {command: [python, train.py]}
evaluate: {command: [python, evaluate.py]}
endpoint: digits
gate: {approval: required}
"""


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[bootstrap.App, FakeGitHub]]:
    specs = tmp_path / "pipelines"
    specs.mkdir()
    (specs / "digits.yaml").write_text(SPEC)
    with serve(TOKEN) as fake:
        fake.permissions.update({"maintainer": "write", "reader": "read"})
        s = settings(
            tmp_path,
            pipelines_dir=specs,
            github_token=SecretStr(TOKEN),
            github_token_is_app=True,  # check runs (and their buttons) are a GitHub App's
            github_api_url=fake.url,
        )
        store = bootstrap.App(s).store
        github = {  # GitHub's adapters as bootstrap builds them, without the 1 s between writes
            "notifier": GitHubNotifier(
                TOKEN,
                base_url=fake.url,
                app_token=True,
                seconds_between_writes=0,
                seconds_between_requests=0,
                timeline=store.append_timeline,
            ),
            "check_runs": GitHubCheckRuns(TOKEN, base_url=fake.url, seconds_between_writes=0),
        }
        fakes: dict[str, Any] = {"bus": FakeBus(), "registry": FakeRegistry(), "endpoint": FakeEndpoint()}
        built = bootstrap.App(s, overrides={**fakes, **github, "store": store, "blobs": FakeBlobs()})
        assert type(bootstrap.App(s).check_runs) is GitHubCheckRuns  # what the App token's settings build
        bootstrap.use(built)
        try:
            yield built, fake
        finally:
            bootstrap.use(None)
        assert_conforms(fake.requests)


def gated_and_waiting(app: bootstrap.App) -> PipelineRun:
    """A run whose gate passed: the gate's check run posted (as the orchestrator posts it), then its wait begins."""
    trigger = Trigger(kind="push", delivery_key="d-0", repo=REPO, sha=SHA, ref="refs/heads/main")
    decision = Decision(promote=True, checks=[Check(name="floor", passed=True, detail="ok")], candidate={})
    run = PipelineRun(
        id=RUN, pipeline="digits", trigger=trigger, state=RunState.GATED, decision=decision, model_uri="/art/m"
    )
    app.store.record_delivery(Delivery(key="d-0", source="github"), [run])
    gate = Notification(
        run_id=RUN, pipeline="digits", repo=REPO, sha=SHA, stage="gate", state="success", description="Gate passed"
    )
    app.notifier.notify(gate.model_copy(update={"report_markdown": REPORT}))
    return app.orchestrator.advance(run)


def press(app: bootstrap.App, identifier: str, login: str, delivery: str, check_run_id: int) -> dict[str, Any]:
    body = json.dumps(pressed(RUN, identifier, login, sha=SHA, check_run_id=check_run_id)).encode()
    reply = client("github_webhook").post("/", data=body, headers=github_headers("check_run", body, "s", delivery))
    assert reply.status_code in (200, 202), reply.get_data(as_text=True)  # 200: a duplicate delivery
    bus = app.bus
    assert isinstance(bus, FakeBus)
    while bus.messages:
        _, data, _ = bus.messages.pop(0)
        app.orchestrator.handle(parse_command(data))
    return dict(reply.get_json())


def labels(check_run: dict[str, Any]) -> list[str]:
    return [button["label"] for button in check_run["actions"]]


def test_a_writer_presses_promote_and_the_waiting_run_rolls_out(app: tuple[bootstrap.App, FakeGitHub]) -> None:
    built, fake = app
    assert gated_and_waiting(built).state is RunState.AWAITING_APPROVAL
    (check_run,) = fake.check_runs.of(REPO, "relaunch/gate")
    assert check_run["external_id"] == RUN and labels(check_run) == ["Promote", "Reject"]
    assert check_run["output"]["title"] == "Waiting for approval: Promote rolls this model out, Reject ends the run"
    assert check_run["output"]["summary"].endswith(REPORT)  # the report stays under the note

    assert press(built, "promote", "maintainer", "p-1", check_run["id"])["outcome"] == "action requested"
    done = built.store.get_run(RUN)
    assert done is not None and done.state is RunState.PROMOTED
    assert ("GET", f"/repos/{REPO}/collaborators/maintainer/permission") in fake.calls()
    (check_run,) = fake.check_runs.of(REPO, "relaunch/gate")  # the same check run, updated: no second one
    assert labels(check_run) == ["Rollback"] and check_run["output"]["title"].startswith("v1 promoted")
    (entry,) = [e for e in built.store.timeline(RUN) if e.kind == "approval"]
    assert (entry.data["by"], entry.data["via"], entry.data["permission"]) == (
        "maintainer",
        "GitHub check run",
        "write",
    )


def test_a_reader_is_told_why_on_the_check_run_and_nothing_changes(app: tuple[bootstrap.App, FakeGitHub]) -> None:
    built, fake = app
    gated_and_waiting(built)
    (check_run,) = fake.check_runs.of(REPO, "relaunch/gate")
    press(built, "promote", "reader", "p-1", check_run["id"])
    press(built, "promote", "reader", "p-1", check_run["id"])  # GitHub's redelivery: the ingest resends the nudge
    assert built.store.get_run(RUN).state is RunState.AWAITING_APPROVAL  # type: ignore[union-attr]
    (check_run,) = fake.check_runs.of(REPO, "relaunch/gate")
    said = f"@reader: Promote needs write access to {REPO}; you have read"
    assert check_run["output"]["title"] == said and labels(check_run) == ["Promote", "Reject"]
    assert check_run["output"]["summary"].endswith(f"> {said}\n\n{REPORT}")
    asked = [c for c in fake.calls() if c == ("GET", f"/repos/{REPO}/collaborators/reader/permission")]
    assert len(asked) == 1  # the redelivery asked nothing and said nothing again
    assert len(fake.bodies("PATCH", f"/repos/{REPO}/check-runs/{check_run['id']}")) == 2  # the buttons, the refusal


def test_a_check_run_github_will_not_update_is_logged_without_the_token(caplog: pytest.LogCaptureFixture) -> None:
    with serve(TOKEN) as fake:
        updates = GitHubCheckRuns(TOKEN, base_url=fake.url, seconds_between_writes=0)
        assert not updates.update(REPO, 99, "note", [])  # no such check run: GitHub's 404
        fake.fail_next(500, f"boom {TOKEN}")
        assert not updates.update(REPO, 1, "note", None)
        assert not updates.update("not a repo", 1, "note", None)  # refused before any request
        assert fake.calls() == [("GET", f"/repos/{REPO}/check-runs/99"), ("GET", f"/repos/{REPO}/check-runs/1")]
    said = [r.getMessage() for r in caplog.records if "not updated" in r.getMessage()]
    assert len(said) == 2 and "HTTP 404" in said[0] and "HTTP 500" in said[1]
    assert TOKEN not in caplog.text and "**********" in said[1]
