"""The pull request report comment through PyGithub against the GitHub stand-in: one comment, edited in place.

Every request is checked against GitHub's OpenAPI description (the cut's issue-comment operations) at the end.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from relaunch.adapters.github.notifier import GitHubNotifier
from relaunch.domain.gate import decide
from relaunch.domain.model import Notification, Scores
from relaunch.domain.pr_report import marker
from relaunch.domain.spec import GatePolicy
from tests.github_server import FakeGitHub, serve
from tests.integration.github.openapi import assert_conforms

pytest.importorskip("github", reason="PyGithub is not installed")

TOKEN = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"
REPO = "relaunch-demo/digits"
FIRST, SECOND = "1" * 40, "2" * 40
COMMENTS = f"/repos/{REPO}/issues/12/comments"


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with serve(TOKEN) as server:
        server.comments.viewer = "relaunch-bot"
        yield server
        assert_conforms(server.requests)
        assert not server.refused


def notifier(fake: FakeGitHub) -> GitHubNotifier:
    return GitHubNotifier(TOKEN, base_url=fake.url, seconds_between_writes=0, seconds_between_requests=0)


def verdict(sha: str, accuracy: float = 0.93, run_id: str = "run-1", pushed_at: float = 1000.0) -> Notification:
    made = decide(Scores(metrics={"accuracy": accuracy}), Scores(metrics={"accuracy": 0.91}), GatePolicy(), "v3")
    return Notification(
        run_id=run_id,
        pipeline="digits",
        repo=REPO,
        sha=sha,
        stage="gate",
        state="success",
        description="Gate passed",
        trigger_kind="pull_request",
        evaluate_only=True,
        pr_number=12,
        decision=made,
        run_created_at=pushed_at,
    )


def ours(fake: FakeGitHub) -> list[dict[str, Any]]:
    return [c for c in fake.comments.listing(REPO, 12) if c["user"]["login"] == "relaunch-bot"]


def test_two_pushes_to_one_pull_request_make_one_comment_edited_in_place(fake: FakeGitHub) -> None:
    notifier(fake).notify(verdict(FIRST))
    notifier(fake).notify(verdict(SECOND, accuracy=0.95, run_id="run-2"))  # another process: nothing cached

    [comment] = ours(fake)
    assert comment["body"].startswith(marker("digits")) and SECOND[:7] in comment["body"]
    assert FIRST[:7] not in comment["body"] and "0.9500" in comment["body"]
    assert len(fake.bodies("POST", COMMENTS)) == 1
    assert len(fake.bodies("PATCH", rf"/repos/{REPO}/issues/comments/\d+")) == 1


def test_a_retry_of_the_same_verdict_finds_the_comment_again(fake: FakeGitHub) -> None:
    sender = notifier(fake)
    sender.notify(verdict(FIRST))
    sender.notify(verdict(FIRST))  # a redelivered command after a timeout: the POST had landed
    assert len(ours(fake)) == 1 and len(fake.bodies("POST", COMMENTS)) == 1


def test_concurrent_verdicts_of_two_processes_leave_one_comment(fake: FakeGitHub) -> None:
    fake.delay_s = 0.05  # both list before either creates
    threads = [
        threading.Thread(target=notifier(fake).notify, args=(verdict(sha, run_id=sha[:3]),)) for sha in (FIRST, SECOND)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(ours(fake)) == 1


def test_a_comment_another_process_created_meanwhile_wins_and_ours_is_removed(fake: FakeGitHub) -> None:
    raced: list[int] = []

    def other_process_creates() -> None:  # between our listing and our creation
        if not raced:
            raced.append(fake.comments.add(REPO, 12, marker("digits") + "\nolder", login="relaunch-bot")["id"])

    fake.comments.on_list = other_process_creates
    notifier(fake).notify(verdict(SECOND))

    [comment] = ours(fake)
    assert comment["id"] == raced[0] and SECOND[:7] in comment["body"]  # the older one carries the newest report
    assert len(fake.bodies("DELETE", rf"/repos/{REPO}/issues/comments/\d+")) == 1


def test_a_human_comment_carrying_the_marker_is_never_edited(fake: FakeGitHub) -> None:
    fake.comments.add(REPO, 12, marker("digits") + "\nI copied your marker", login="mallory")
    notifier(fake).notify(verdict(FIRST))
    notifier(fake).notify(verdict(SECOND, run_id="run-2"))

    human = [c for c in fake.comments.listing(REPO, 12) if c["user"]["login"] == "mallory"]
    assert human[0]["body"].endswith("I copied your marker")
    [comment] = ours(fake)
    assert SECOND[:7] in comment["body"]
    assert all(str(human[0]["id"]) not in path for _, path in fake.calls() if _ in ("PATCH", "DELETE"))


def test_a_deleted_comment_is_posted_again_and_one_deleted_mid_edit_too(fake: FakeGitHub) -> None:
    notifier(fake).notify(verdict(FIRST))
    fake.comments.remove(ours(fake)[0]["id"])  # a maintainer deleted it
    notifier(fake).notify(verdict(SECOND, run_id="run-2"))
    [again] = ours(fake)
    assert SECOND[:7] in again["body"]

    fake.comments.on_list = lambda: fake.comments.remove(again["id"])  # deleted between our listing and our edit
    notifier(fake).notify(verdict(FIRST, run_id="run-3"))
    fake.comments.on_list = None
    [third] = ours(fake)
    assert third["id"] != again["id"] and FIRST[:7] in third["body"]


def test_a_push_or_a_pending_gate_never_touches_comments(fake: FakeGitHub) -> None:
    notifier(fake).notify(verdict(FIRST).model_copy(update={"pr_number": None}))
    notifier(fake).notify(verdict(FIRST).model_copy(update={"state": "pending"}))
    assert not [path for _, path in fake.calls() if "/issues/" in path or path == "/user"]


def test_a_refused_comment_is_logged_and_never_raises(fake: FakeGitHub, caplog: pytest.LogCaptureFixture) -> None:
    fake.comments.locked = True  # GitHub's 403 on a locked conversation
    notifier(fake).notify(verdict(FIRST))
    assert "pr comment" in caplog.text and "403" in caplog.text and TOKEN not in caplog.text
    assert ours(fake) == []


def test_as_a_github_app_only_the_apps_own_marked_comment_is_edited() -> None:
    from pydantic import SecretStr

    from relaunch.adapters.github.client import GitHubApp
    from tests.github_server import FakeApp
    from tests.integration.github.test_github_app_auth import APP_ID, INSTALLATION, PRIVATE, PUBLIC

    with serve(TOKEN, app=FakeApp(APP_ID, PUBLIC, INSTALLATION)) as fake:
        fake.comments.add(REPO, 12, marker("digits") + "\nanother app's", login="other[bot]", app_id=111)
        app = GitHubApp(APP_ID, SecretStr(PRIVATE), INSTALLATION)
        for sha in (FIRST, SECOND):
            GitHubNotifier(app, base_url=fake.url, seconds_between_writes=0, seconds_between_requests=0).notify(
                verdict(sha, run_id=sha[:3])
            )
        mine = [c for c in fake.comments.listing(REPO, 12) if (c["performed_via_github_app"] or {}).get("id") == 987654]
        assert len(mine) == 1 and SECOND[:7] in mine[0]["body"] and mine[0]["user"]["login"] == "relaunch[bot]"
        assert fake.comments.listing(REPO, 12)[0]["body"].endswith("another app's")
        assert ("GET", "/user") not in fake.calls()  # an App knows who it is
        assert_conforms(fake.requests)


def test_a_long_conversation_is_read_page_by_page_and_the_comment_still_found(fake: FakeGitHub) -> None:
    for i in range(45):
        fake.comments.add(REPO, 12, f"review remark {i}", login="alice")
    notifier(fake).notify(verdict(FIRST))
    notifier(fake).notify(verdict(SECOND, run_id="run-2"))
    [comment] = ours(fake)
    assert SECOND[:7] in comment["body"] and len(fake.bodies("POST", COMMENTS)) == 1
    assert any(r.query.get("page") == ["2"] for r in fake.requests if r.path == COMMENTS)  # GitHub's Link: next


def test_the_validator_knows_the_listings_documented_query_and_nothing_else() -> None:
    from tests.github_server import Recorded
    from tests.integration.github.openapi import problems

    def listing(**query: str) -> list[str]:
        return problems(Recorded("GET", COMMENTS, {k: [v] for k, v in query.items()}, {}, None))

    assert listing(per_page="100", page="2", since="2026-01-01T00:00:00Z") == []
    assert listing(sort="created") == [
        "GET /repos/{owner}/{repo}/issues/{issue_number}/comments: unexpected query ['sort']"
    ]
    assert problems(Recorded("POST", COMMENTS, {}, {}, {"body": 3})) != []  # the body must be a string


def test_a_late_verdict_of_an_older_push_does_not_overwrite_the_newer_report(fake: FakeGitHub) -> None:
    notifier(fake).notify(verdict(SECOND, accuracy=0.95, run_id="run-2", pushed_at=2000.0))
    notifier(fake).notify(verdict(FIRST, run_id="run-1", pushed_at=1000.0))  # its evaluation was slower

    [comment] = ours(fake)
    assert SECOND[:7] in comment["body"] and FIRST[:7] not in comment["body"]
    assert not fake.bodies("PATCH", rf"/repos/{REPO}/issues/comments/\d+")
