"""The Slack message of a gate verdict: the PR report's summary (verdict, key deltas), with links to the run and PR."""

from __future__ import annotations

from typing import Any

from relaunch.adapters.slack import SlackNotifier, slack_message
from relaunch.domain.gate import decide
from relaunch.domain.model import Notification, Scores
from relaunch.domain.spec import GatePolicy
from tests.integration.slack.conftest import FakeSlack

SHA = "9f3c1d2e4b5a69788796a5b4c3d2e1f001234567"


def verdict(**fields: Any) -> Notification:
    made = decide(
        Scores(metrics={"accuracy": 0.93, "log_loss": 0.2}),
        Scores(metrics={"accuracy": 0.91, "log_loss": 0.3}),
        GatePolicy(floors={"accuracy": 0.5}),
        "v3",
    )
    values: dict[str, Any] = {"run_id": "run-42", "pipeline": "digits", "repo": "relaunch-demo/digits", "sha": SHA}
    values.update(stage="gate", state="success", description="Gate passed", trigger_kind="pull_request")
    values.update(evaluate_only=True, pr_number=12, decision=made, reasons=made.reasons)
    return Notification(**{**values, **fields})


def texts(message: dict[str, Any]) -> str:
    return "\n".join(str(block) for block in message["blocks"])


def test_a_pull_request_verdict_carries_the_deltas_and_links_to_the_run_page_and_the_pr(slack: FakeSlack) -> None:
    SlackNotifier(slack.url, public_url="https://relaunch.example/").notify(verdict())

    [message] = slack.posts
    blocks = texts(message)
    assert "*Key metrics*\\n• accuracy 0.9300 (+0.0200)\\n• log_loss 0.2000 (-0.1000)" in blocks
    assert "<https://relaunch.example/runs/run-42|run run-42>" in blocks
    assert "<https://github.com/relaunch-demo/digits/pull/12|PR #12>" in blocks


def test_the_pr_link_is_built_only_from_a_valid_repository_and_a_positive_number() -> None:
    for hostile in ("evil/x|<https://phish.example|click>", "evil", "a/b/c"):
        assert "pull/12" not in texts(slack_message(verdict(repo=hostile)))
    for number in (None, 0, -5):
        assert "/pull/" not in texts(slack_message(verdict(pr_number=number)))


def test_without_a_public_url_the_run_is_named_without_a_link() -> None:
    blocks = texts(slack_message(verdict()))
    assert "runs/run-42" not in blocks and "accuracy 0.9300 (+0.0200)" in blocks
