"""GitHubNotifier through the real PyGithub client against a local api.github.com.

Every request the notifier sends is checked against GitHub's OpenAPI description (tests/samples/github) when the
fake server stops, on top of the exact bodies each test asserts.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest

from relaunch.adapters.github.notifier import GitHubNotifier
from relaunch.domain.gate import decide, report_markdown
from relaunch.domain.model import Notification, Scores, Stage, StatusState
from relaunch.domain.spec import GatePolicy
from tests.github_server import FakeGitHub, serve
from tests.integration.github.openapi import assert_conforms

pytest.importorskip("github", reason="PyGithub is not installed")

TOKEN = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"
SHA = "9f3c1d2e4b5a69788796a5b4c3d2e1f001234567"
REPO = "relaunch-demo/digits"
STATUSES = f"/repos/{REPO}/statuses/{SHA}"
PR_SAMPLE = Path(__file__).parents[2] / "samples" / "github" / "pull_request.opened.1.json"


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with serve(TOKEN) as server:
        yield server
        assert_conforms(server.requests)


def notifier(fake: FakeGitHub, token: str = TOKEN, **kwargs: Any) -> GitHubNotifier:
    kwargs.setdefault("seconds_between_writes", 0)
    kwargs.setdefault("seconds_between_requests", 0)
    return GitHubNotifier(token, base_url=fake.url, **kwargs)


def note(stage: Stage = "train", state: StatusState = "pending", **fields: Any) -> Notification:
    values: dict[str, Any] = {"run_id": "run-42", "pipeline": "digits", "repo": REPO, "sha": SHA}
    values.update(stage=stage, state=state, description=f"{stage} {state}", ref="refs/heads/main")
    values.update(fields)
    return Notification(**values)


def rejected_report() -> tuple[str, list[str]]:
    """A real gate report: the candidate misses the floor, the ceiling and the regression limit."""
    policy = GatePolicy(floors={"accuracy": 0.9}, ceilings={"log_loss": 0.5}, max_regression={"accuracy": 0.005})
    candidate = Scores(metrics={"accuracy": 0.81, "log_loss": 0.7}, outcomes=[1, 0, 1, 1])
    champion = Scores(metrics={"accuracy": 0.95, "log_loss": 0.2}, outcomes=[1, 1, 1, 1])
    decision = decide(candidate, champion, policy, "v2")
    return report_markdown(decision, pipeline="digits", candidate_label=SHA[:7]), decision.reasons


@pytest.mark.parametrize("state", get_args(StatusState))
@pytest.mark.parametrize("stage", get_args(Stage))
def test_every_stage_and_state_is_one_commit_status(fake: FakeGitHub, stage: Stage, state: StatusState) -> None:
    notifier(fake).notify(note(stage, state))

    assert fake.calls() == [("POST", STATUSES)]
    assert fake.requests[0].body == {"state": state, "context": f"relaunch/{stage}", "description": f"{stage} {state}"}
    assert fake.requests[0].headers["authorization"] == f"token {TOKEN}"


def test_a_long_description_is_cut_to_githubs_140_characters_with_a_marker(fake: FakeGitHub) -> None:
    reasons = "; ".join(f"accuracy {i / 100:.4f} < floor 0.9000" for i in range(20))
    notifier(fake).notify(note("gate", "failure", description="Gate failed: " + reasons))

    (sent,) = fake.bodies("POST", STATUSES)
    assert len(sent["description"]) == 140 and sent["description"].endswith("…")
    assert sent["description"][:-1] == ("Gate failed: " + reasons)[:139]


def test_the_public_url_becomes_the_target_url_of_statuses(fake: FakeGitHub) -> None:
    notifier(fake, public_url="https://relaunch.example.com/").notify(note("build", "success"))

    (sent,) = fake.bodies("POST", STATUSES)
    assert sent["target_url"] == "https://relaunch.example.com/runs/run-42"


def test_a_plain_token_gets_statuses_only(fake: FakeGitHub) -> None:
    report, reasons = rejected_report()
    notifier(fake).notify(note("gate", "failure", report_markdown=report, reasons=reasons))

    assert fake.calls() == [("POST", STATUSES)]


def test_an_app_token_also_gets_the_gate_report_as_a_check_run(fake: FakeGitHub) -> None:
    report, reasons = rejected_report()
    summary = "Gate failed: " + "; ".join(reasons)
    gate = note("gate", "failure", description=summary, report_markdown=report, reasons=reasons)

    notifier(fake, app_token=True, public_url="https://relaunch.example.com").notify(gate)

    assert fake.calls() == [("POST", STATUSES), ("POST", f"/repos/{REPO}/check-runs")]
    assert fake.requests[1].body == {
        "name": "relaunch/gate",
        "head_sha": SHA,
        "external_id": "run-42",
        "status": "completed",
        "conclusion": "failure",
        "details_url": "https://relaunch.example.com/runs/run-42",
        "output": {"title": summary[:139] + "…", "summary": report},
    }
    assert "| floor:accuracy | **fail** |" in fake.requests[1].body["output"]["summary"]


def test_statuses_without_a_report_make_no_check_run_even_with_an_app_token(fake: FakeGitHub) -> None:
    notifier(fake, app_token=True).notify(note("gate", "pending"))

    assert fake.calls() == [("POST", STATUSES)]


def test_a_report_longer_than_githubs_limit_continues_in_the_text(fake: FakeGitHub) -> None:
    report = "| check | result |\n" + "| floor:accuracy | **fail** |\n" * 3000  # ~90,000 characters
    notifier(fake, app_token=True).notify(note("gate", "failure", report_markdown=report))

    (sent,) = fake.bodies("POST", f"/repos/{REPO}/check-runs")
    output = sent["output"]
    assert len(output["summary"]) == 65535 and output["summary"].endswith("…")
    assert output["summary"][:-1] + output["text"] == report


def test_a_promotion_is_one_deployment_whose_status_follows_the_rollout(fake: FakeGitHub) -> None:
    github = notifier(fake)
    github.notify(note("deploy", "pending", description="Rolling out to endpoint digits", endpoint="digits"))
    deployments = f"/repos/{REPO}/deployments"
    assert fake.calls() == [
        ("POST", STATUSES),
        ("GET", deployments),
        ("POST", deployments),
        ("POST", f"{deployments}/1/statuses"),
    ]
    assert fake.requests[1].query == {"sha": [SHA], "environment": ["digits"]}
    assert fake.requests[2].body == {
        "ref": SHA,
        "environment": "digits",
        "auto_merge": False,
        "required_contexts": [],
        "payload": {"run_id": "run-42", "pipeline": "digits", "model_version": None},
        "description": "relaunch digits run run-42",
        "production_environment": True,
    }
    assert fake.requests[3].body == {"state": "in_progress", "description": "Rolling out to endpoint digits"}

    done = "v3 serves 100% of digits"
    github.notify(note("deploy", "success", description=done, endpoint="digits", model_version="v3"))

    assert fake.calls()[4:] == [("POST", STATUSES), ("GET", deployments), ("POST", f"{deployments}/1/statuses")]
    assert fake.requests[6].body == {"state": "success", "description": done}
    assert len(fake.deployments) == 1
    assert [s["state"] for s in fake.deployment_statuses[1]] == ["in_progress", "success"]


def test_a_redelivered_notification_reuses_the_runs_deployment_and_another_run_gets_its_own(fake: FakeGitHub) -> None:
    github = notifier(fake)
    pending = note("deploy", "pending", endpoint="digits")
    github.notify(pending)
    github.notify(pending)  # the orchestrator crashed before recording that it had notified
    assert len(fake.deployments) == 1 and len(fake.deployment_statuses[1]) == 2

    github.notify(note("deploy", "pending", endpoint="digits", run_id="run-43"))  # same commit, a re-run
    assert [d["payload"]["run_id"] for d in fake.deployments] == ["run-42", "run-43"]


def test_a_failed_rollout_marks_the_deployment_failed(fake: FakeGitHub) -> None:
    github = notifier(fake)
    github.notify(note("deploy", "pending", endpoint="digits"))
    github.notify(note("deploy", "failure", description="deploy of v3 refused: quota", endpoint="digits"))

    assert [s["state"] for s in fake.deployment_statuses[1]] == ["in_progress", "failure"]
    assert fake.deployment_statuses[1][1]["description"] == "deploy of v3 refused: quota"


def test_a_pull_request_evaluation_reports_on_the_head_commit_and_never_deploys(fake: FakeGitHub) -> None:
    event = json.loads(PR_SAMPLE.read_text())
    repo, head = event["repository"]["full_name"], event["pull_request"]["head"]["sha"]
    report, reasons = rejected_report()
    common = {"repo": repo, "sha": head, "trigger_kind": "pull_request", "evaluate_only": True}
    github = notifier(fake, app_token=True)

    github.notify(note("gate", "pending", **common))
    github.notify(note("gate", "failure", report_markdown=report, reasons=reasons, **common))
    github.notify(note("deploy", "success", endpoint="digits", model_version="v3", **common))  # must not deploy

    statuses = f"/repos/{repo}/statuses/{head}"
    assert fake.calls() == [
        ("POST", statuses),
        ("POST", statuses),
        ("POST", f"/repos/{repo}/check-runs"),
        ("POST", statuses),
    ]
    assert fake.requests[2].body["head_sha"] == head
    assert not fake.deployments


def test_a_github_500_is_logged_without_the_token_and_the_check_run_still_goes(
    fake: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    # urllib3's request log included; PyGithub keeps its own logger at INFO (at DEBUG it logs bodies verbatim).
    caplog.set_level(logging.DEBUG)
    fake.fail_next(500, f"upstream said: Authorization: token {TOKEN}")  # a proxy that echoes headers
    report, reasons = rejected_report()

    notifier(fake, app_token=True).notify(note("gate", "failure", report_markdown=report, reasons=reasons))

    assert fake.calls() == [("POST", STATUSES), ("POST", f"/repos/{REPO}/check-runs")]
    (warning,) = [r for r in caplog.records if r.name == "relaunch.adapters.github.notifier"]
    assert warning.levelno == logging.WARNING
    assert "GitHub status for run run-42 (gate failure" in warning.getMessage() and "HTTP 500" in warning.getMessage()
    assert TOKEN not in caplog.text


def test_a_rate_limit_is_logged_and_the_rest_of_the_notification_dropped(
    fake: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail_next(403, "You have exceeded a secondary rate limit.", retry_after="60")
    report, _ = rejected_report()

    notifier(fake, app_token=True).notify(note("gate", "failure", report_markdown=report))

    assert fake.calls() == [("POST", STATUSES)]  # no waiting, no retry, no check run
    assert "HTTP 403" in caplog.text and "secondary rate limit" in caplog.text


def test_a_brief_503_is_retried(fake: FakeGitHub, caplog: pytest.LogCaptureFixture) -> None:
    fake.fail_next(503, "Service Unavailable")

    notifier(fake).notify(note("train", "success"))

    assert fake.calls() == [("POST", STATUSES), ("POST", STATUSES)]
    assert not [r for r in caplog.records if r.name.startswith("relaunch")]


def test_bad_credentials_are_logged_without_the_token(fake: FakeGitHub, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="github")  # PyGithub's request log, headers included
    wrong = "ghp_wrongwrongwrongwrongwrongwrongwrong"

    notifier(fake, token=wrong).notify(note("train", "pending"))

    assert "HTTP 401: Bad credentials" in caplog.text and "oauth token removed" in caplog.text
    assert wrong not in caplog.text


def test_a_notification_without_repo_or_commit_sends_nothing(fake: FakeGitHub) -> None:
    github = notifier(fake)
    github.notify(note(repo=None))
    github.notify(note(sha=None))
    github.notify(note(repo="../../admin"))

    assert fake.requests == []


def test_configuration_errors_name_the_field_and_the_token_stays_out_of_reprs() -> None:
    with pytest.raises(ValueError, match="token"):
        GitHubNotifier("  ")
    with pytest.raises(ValueError, match="base_url"):
        GitHubNotifier(TOKEN, base_url="api.github.com")
    with pytest.raises(ValueError, match="seconds_between_writes"):
        GitHubNotifier(TOKEN, seconds_between_writes=-1)
    assert TOKEN not in repr(GitHubNotifier(TOKEN)) and TOKEN not in str(vars(GitHubNotifier(TOKEN)))


def test_importing_and_building_the_notifier_does_not_import_pygithub() -> None:
    code = (
        "import sys; from relaunch.adapters.github.notifier import GitHubNotifier; GitHubNotifier('t'); "
        "print('github' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
