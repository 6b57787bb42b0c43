"""A fork's run awaiting approval, as GitHub sees it: a pending gate status and a neutral check run saying how."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from relaunch.adapters.github.notifier import GitHubNotifier
from relaunch.domain.approval import how_to_approve
from relaunch.domain.model import Notification, PipelineRun, Trigger
from tests.github_server import FakeGitHub, serve
from tests.integration.github.openapi import assert_conforms

pytest.importorskip("github", reason="PyGithub is not installed")

TOKEN = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"
REPO = "Codertocat/Hello-World"
SHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with serve(TOKEN) as server:
        yield server
        assert_conforms(server.requests)


def test_an_awaiting_run_posts_a_pending_status_and_a_neutral_check_run(fake: FakeGitHub) -> None:
    trigger = Trigger(kind="pull_request", delivery_key="d", repo=REPO, sha=SHA, pr_number=2, head_repo="mallory/x")
    run = PipelineRun(id="hello-1", pipeline="hello", trigger=trigger)
    text = how_to_approve(run, "relaunch:approved")
    note = Notification(
        run_id=run.id,
        pipeline="hello",
        repo=REPO,
        sha=SHA,
        stage="gate",
        state="pending",
        conclusion="neutral",
        description="Awaiting approval",
        report_markdown=text,
    )
    GitHubNotifier(TOKEN, base_url=fake.url, app_token=True, seconds_between_writes=0).notify(note)

    (status,) = fake.bodies("POST", f"/repos/{REPO}/statuses/{SHA}")
    (check,) = fake.bodies("POST", f"/repos/{REPO}/check-runs")
    assert status["state"] == "pending" and status["context"] == "relaunch/gate"
    assert check["conclusion"] == "neutral" and check["status"] == "completed" and check["head_sha"] == SHA
    assert "`relaunch:approved`" in check["output"]["summary"] and "relaunch approve hello-1" in text
