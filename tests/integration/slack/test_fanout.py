"""FanoutNotifier over the real notifiers: GitHub (local api.github.com), Slack (local webhook), the timeline."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from relaunch.adapters.fanout import FanoutNotifier
from relaunch.adapters.github.notifier import GitHubNotifier
from relaunch.adapters.local.notifier import TimelineNotifier
from relaunch.adapters.local.sqlite_store import SqliteRunStore
from relaunch.adapters.slack import SlackNotifier
from relaunch.domain.model import Delivery, Notification, PipelineRun, Trigger
from tests.github_server import serve
from tests.integration.github.openapi import assert_conforms
from tests.integration.slack.conftest import FakeSlack

pytest.importorskip("github", reason="PyGithub is not installed")

TOKEN = "ghs_fanoutfanoutfanoutfanoutfanout0000"
SHA = "9f3c1d2e4b5a69788796a5b4c3d2e1f001234567"
REPO = "relaunch-demo/digits"


class BrokenNotifier:
    """A notifier whose SDK blew up with a credential in its message."""

    def __init__(self) -> None:
        self.calls = 0

    def notify(self, notification: Notification) -> None:
        self.calls += 1
        raise RuntimeError(f"connection to https://hooks.example.com/secret-{TOKEN} reset")


def gate_rejection() -> Notification:
    return Notification(
        run_id="run-42",
        pipeline="digits",
        repo=REPO,
        sha=SHA,
        stage="gate",
        state="failure",
        description="Gate failed: accuracy 0.8100 < floor 0.9000",
        report_markdown="## relaunch gate: ❌ reject",
        reasons=["accuracy 0.8100 < floor 0.9000"],
    )


def test_every_notifier_hears_it_even_after_one_fails_and_github_gets_what_the_timeline_shows(
    tmp_path: Path, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqliteRunStore(tmp_path / "relaunch.db")
    trigger = Trigger(kind="push", delivery_key="d-1", repo=REPO, sha=SHA)
    store.record_delivery(
        Delivery(key="d-1", source="github"), [PipelineRun(id="run-42", pipeline="digits", trigger=trigger)]
    )
    broken = BrokenNotifier()

    with serve(TOKEN) as github:
        github_notifier = GitHubNotifier(
            TOKEN, base_url=github.url, app_token=True, seconds_between_writes=0, seconds_between_requests=0
        )
        fanout = FanoutNotifier([broken, github_notifier, SlackNotifier(slack.url), TimelineNotifier(store)])
        fanout.notify(gate_rejection())
        assert_conforms(github.requests)

    assert broken.calls == 1 and len(slack.posts) == 1
    sent_status, sent_check = (r.body for r in github.requests)
    recorded = {e.kind: e.data for e in store.timeline("run-42") if e.kind.startswith("github.")}
    assert {k: v for k, v in recorded["github.status"].items() if k not in ("repo", "sha")} == sent_status
    assert {k: v for k, v in recorded["github.check_run"].items() if k != "repo"} == sent_check
    (warning,) = [r for r in caplog.records if r.name == "relaunch.adapters.fanout"]
    assert warning.levelno == logging.WARNING
    assert warning.getMessage() == "BrokenNotifier failed on run run-42 (gate failure): RuntimeError"
    assert TOKEN not in caplog.text


def test_no_notifiers_is_a_quiet_no_op() -> None:
    FanoutNotifier([]).notify(gate_rejection())
    assert repr(FanoutNotifier([BrokenNotifier()])) == "FanoutNotifier(BrokenNotifier)"
