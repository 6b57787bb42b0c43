"""SlackNotifier posting Block Kit to a local incoming webhook: the exact message, what is sent, failures."""

from __future__ import annotations

import logging
from typing import Any, get_args

import pytest

from relaunch.adapters.local.stack import free_port
from relaunch.adapters.slack import SlackNotifier
from relaunch.domain.model import Notification, Stage, StatusState
from tests.integration.slack.conftest import HOOK_PATH, FakeSlack

SHA = "9f3c1d2e4b5a69788796a5b4c3d2e1f001234567"
REASONS = [
    "accuracy 0.8100 < floor 0.9000",
    "log_loss 0.7000 > ceiling 0.5000",
    "accuracy 0.8100 vs champion 0.9500: regression 0.1400 exceeds limit 0.0050",
]
SECRET = HOOK_PATH.rsplit("/", 1)[1]


def note(stage: Stage = "gate", state: StatusState = "failure", **fields: Any) -> Notification:
    values: dict[str, Any] = {
        "run_id": "run-42",
        "pipeline": "digits",
        "repo": "relaunch-demo/digits",
        "sha": SHA,
        "stage": stage,
        "state": state,
        "description": f"{stage} {state}",
        "ref": "refs/heads/main",
    }
    values.update(fields)
    return Notification(**values)


def test_a_gate_rejection_is_one_block_kit_message_with_its_reasons(slack: FakeSlack) -> None:
    summary = "Gate failed: " + "; ".join(REASONS)
    SlackNotifier(slack.url).notify(note("gate", "failure", description=summary, reasons=REASONS))

    assert slack.paths == [HOOK_PATH]
    assert slack.posts == [
        {
            "text": f"❌ digits: gate failed: {summary.replace('>', '&gt;').replace('<', '&lt;')}",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "❌ digits: gate failed"}},
                {
                    "type": "section",
                    "fields": [
                        {"type": "mrkdwn", "text": "*Trigger*\npush"},
                        {"type": "mrkdwn", "text": "*Ref*\nrefs/heads/main"},
                        {"type": "mrkdwn", "text": "*Commit*\nrelaunch-demo/digits@9f3c1d2"},
                        {"type": "mrkdwn", "text": "*Stage*\ngate: failure"},
                    ],
                },
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": "*Gate reasons*\n"
                        "• accuracy 0.8100 &lt; floor 0.9000\n"
                        "• log_loss 0.7000 &gt; ceiling 0.5000\n"
                        "• accuracy 0.8100 vs champion 0.9500: regression 0.1400 exceeds limit 0.0050",
                    },
                },
                {
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": summary.replace(">", "&gt;").replace("<", "&lt;")}],
                },
            ],
        }
    ]


def test_a_promotion_names_the_endpoint_and_version_and_links_the_run(slack: FakeSlack) -> None:
    promoted = note(
        "deploy",
        "success",
        description="v3 serves 100% of digits",
        endpoint="digits",
        model_version="v3",
        reasons=["accuracy 0.9700 >= floor 0.9000"],
        target_url="https://relaunch.example.com/runs/run-42",
    )
    SlackNotifier(slack.url).notify(promoted)

    (message,) = slack.posts
    header, facts, reasons, rollout, context = message["blocks"]
    assert header["text"]["text"] == "✅ digits: v3 promoted"
    assert facts["fields"][3]["text"] == "*Stage*\ndeploy: success"
    assert reasons["text"]["text"] == "*Gate reasons*\n• accuracy 0.9700 &gt;= floor 0.9000"
    assert rollout == {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": "*Endpoint*\ndigits"},
            {"type": "mrkdwn", "text": "*Model version*\nv3"},
        ],
    }
    assert context["elements"][0]["text"] == (
        "v3 serves 100% of digits · <https://relaunch.example.com/runs/run-42|run run-42>"
    )
    assert message["text"] == "✅ digits: v3 promoted: v3 serves 100% of digits"


def test_an_evaluation_only_pull_request_says_so(slack: FakeSlack) -> None:
    pr = note("gate", "success", trigger_kind="pull_request", evaluate_only=True, ref="refs/pull/2/head")
    SlackNotifier(slack.url).notify(pr)

    facts = slack.posts[0]["blocks"][1]["fields"]
    assert facts[0]["text"] == "*Trigger*\npull_request (evaluation only)"
    assert facts[1]["text"] == "*Ref*\nrefs/pull/2/head"


def test_only_verdicts_finished_rollouts_and_failures_reach_the_channel(slack: FakeSlack) -> None:
    notifier = SlackNotifier(slack.url)
    for stage in get_args(Stage):
        for state in get_args(StatusState):
            notifier.notify(note(stage, state))

    posted = {post["blocks"][1]["fields"][3]["text"].split("\n")[1] for post in slack.posts}
    assert posted == {
        "build: failure",
        "build: error",
        "train: failure",
        "train: error",
        "evaluate: failure",
        "evaluate: error",
        "gate: success",
        "gate: failure",
        "gate: error",
        "approval: success",  # who approved (or rejected, below) a gated run: news, as the verdict is
        "approval: failure",
        "approval: error",
        "deploy: success",
        "deploy: failure",
        "deploy: error",
    }
    assert len(slack.posts) == len(posted)


def test_a_refused_post_is_logged_without_the_webhook_url(slack: FakeSlack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every library's request log included
    slack.answers.append((500, "rollup_error"))

    SlackNotifier(slack.url).notify(note())

    assert len(slack.posts) == 1
    assert "Slack refused the post for run run-42: HTTP 500 rollup_error" in caplog.text
    assert SECRET not in caplog.text


def test_a_stalled_webhook_times_out_and_is_logged_without_the_url(
    slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    slack.stall = True

    SlackNotifier(slack.url, timeout_s=0.2).notify(note())

    assert "Slack post for run run-42 failed: TimeoutError" in caplog.text
    assert SECRET not in caplog.text


def test_an_unreachable_webhook_is_logged_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"http://127.0.0.1:{free_port()}{HOOK_PATH}"

    SlackNotifier(url, timeout_s=1).notify(note())

    assert "Slack post for run run-42 failed: ConnectionRefusedError" in caplog.text
    assert SECRET not in caplog.text


def test_long_texts_stay_within_block_kit_limits(slack: FakeSlack) -> None:
    many = [f"metric_{i} 0.{i:04d} < floor 0.9000 " + "x" * 40 for i in range(200)]
    SlackNotifier(slack.url).notify(note(pipeline="p" * 200, reasons=many, description="d" * 5000))

    header, _, reasons, context = slack.posts[0]["blocks"]
    assert len(header["text"]["text"]) == 150
    assert len(reasons["text"]["text"]) == 3000 and reasons["text"]["text"].endswith("…")
    assert len(context["elements"][0]["text"]) <= 3000


def test_configuration_errors_never_echo_the_url() -> None:
    with pytest.raises(ValueError, match="webhook_url") as error:
        SlackNotifier(f"hooks.slack.com{HOOK_PATH}")
    assert SECRET not in str(error.value)
    with pytest.raises(ValueError, match="timeout_s"):
        SlackNotifier(f"https://hooks.slack.com{HOOK_PATH}", timeout_s=0)
    notifier = SlackNotifier(f"https://hooks.slack.com{HOOK_PATH}")
    assert SECRET not in repr(notifier) and SECRET not in str(vars(notifier))
