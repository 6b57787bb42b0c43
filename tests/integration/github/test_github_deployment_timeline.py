"""GitHub deployments on the run's timeline: PyGithub's real requests against the GitHub stand-in, checked against
GitHub's OpenAPI description, and each deployment status recorded with GitHub's deployment id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from relaunch.adapters.github.notifier import GitHubNotifier
from relaunch.domain.model import Notification, TimelineEntry
from tests.github_server import FakeGitHub, serve
from tests.integration.github.openapi import assert_conforms

pytest.importorskip("github", reason="PyGithub is not installed")

TOKEN = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"
SHA = "9f3c1d2e4b5a69788796a5b4c3d2e1f001234567"
REPO = "relaunch-demo/digits"
DEPLOYMENTS = f"/repos/{REPO}/deployments"


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with serve(TOKEN) as server:
        yield server
        assert_conforms(server.requests)


class Timeline:
    """What the notifier appended, per run (the store's append_timeline)."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, TimelineEntry]] = []

    def append(self, run_id: str, entry: TimelineEntry) -> None:
        self.entries.append((run_id, entry))

    def deployments(self, run_id: str = "run-42") -> list[dict[str, Any]]:
        return [e.data for r, e in self.entries if r == run_id and e.kind == "deployment"]


def notifier(fake: FakeGitHub, timeline: Timeline | None) -> GitHubNotifier:
    return GitHubNotifier(
        TOKEN,
        base_url=fake.url,
        seconds_between_writes=0,
        seconds_between_requests=0,
        timeline=timeline.append if timeline else None,
    )


def note(state: str, description: str, **fields: Any) -> Notification:
    values: dict[str, Any] = {"run_id": "run-42", "pipeline": "digits", "repo": REPO, "sha": SHA, "stage": "deploy"}
    values.update(state=state, description=description, endpoint="digits", model_version="v3")
    return Notification(**{**values, **fields})


def test_each_deployment_status_lands_on_the_timeline_with_githubs_deployment_id(fake: FakeGitHub) -> None:
    timeline = Timeline()
    github = notifier(fake, timeline)
    github.notify(note("pending", "Deploying v3 to digits"))
    github.notify(note("success", "v3 serves 100% of digits"))
    github.notify(note("pending", "Deploying v4 to digits", run_id="run-43", model_version="v4"))

    assert [(d["id"], d["status"]) for d in timeline.deployments()] == [(1, "in_progress"), (1, "success")]
    assert timeline.deployments()[0]["environment"] == "digits" and timeline.deployments()[0]["ref"] == SHA
    assert [(d["id"], d["status"]) for d in timeline.deployments("run-43")] == [(2, "in_progress")]
    messages = [e.message for r, e in timeline.entries if r == "run-42"]
    assert messages[-1] == "deployment 1 of v3 to digits: success: v3 serves 100% of digits"


def test_a_rollback_after_the_promotion_makes_the_deployment_inactive_and_one_during_it_a_failure(
    fake: FakeGitHub,
) -> None:
    timeline = Timeline()
    github = notifier(fake, timeline)
    github.notify(note("pending", "Deploying v3 to digits"))
    github.notify(note("success", "v3 serves 100% of digits"))
    github.notify(note("failure", "Rolled back: rolled back by hand to v2"))
    github.notify(note("pending", "Deploying v4 to digits", run_id="run-43"))
    github.notify(note("failure", "Rolled back: canary error rate 0.30 > 0.05", run_id="run-43"))

    assert [s["state"] for s in fake.deployment_statuses[1]] == ["in_progress", "success", "inactive"]
    assert [s["state"] for s in fake.deployment_statuses[2]] == ["in_progress", "failure"]
    assert [d["status"] for d in timeline.deployments()] == ["in_progress", "success", "inactive"]
    listed = [r for r in fake.requests if r.method == "GET" and r.path.endswith("/statuses")]
    assert [r.path for r in listed] == [f"{DEPLOYMENTS}/1/statuses", f"{DEPLOYMENTS}/2/statuses"]  # failures only


def test_a_deployment_github_refused_is_not_on_the_timeline(fake: FakeGitHub) -> None:
    timeline = Timeline()
    fake.fail_next(422, "Validation Failed")  # the commit status
    fake.fail_next(403, "Resource not accessible by integration")  # the lookup of the run's deployment
    notifier(fake, timeline).notify(note("pending", "Deploying v3 to digits"))
    assert fake.deployments == [] and timeline.entries == []


def test_without_a_timeline_the_notifier_still_deploys(fake: FakeGitHub) -> None:
    notifier(fake, None).notify(note("pending", "Deploying v3 to digits"))
    assert [s["state"] for s in fake.deployment_statuses[1]] == ["in_progress"]


def test_the_composed_notifier_records_each_deployment_once_with_its_id(fake: FakeGitHub, tmp_path: Path) -> None:
    from relaunch.bootstrap import App
    from relaunch.settings import Settings

    app = App(Settings(home=tmp_path, github_token=SecretStr(TOKEN), github_api_url=fake.url))
    app.notifier.notify(note("pending", "Deploying v3 to digits"))
    entries = [e for e in app.store.timeline("run-42") if e.kind == "deployment"]
    assert [(e.data["id"], e.data["status"]) for e in entries] == [(1, "in_progress")]  # not also the local one
    assert [e.kind for e in app.store.timeline("run-42")].count("github.status") == 1
