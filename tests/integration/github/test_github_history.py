"""GitHubHistory through the real PyGithub client against a local api.github.com (tests/github_server.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from relaunch.adapters.github.history import GitHubHistory
from relaunch.domain.ports import TransientError
from tests.github_server import FakeGitHub, serve
from tests.integration.github.openapi import assert_conforms

pytest.importorskip("github", reason="PyGithub is not installed")

TOKEN = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"
REPO = "Codertocat/Hello-World"
A, B, C, GONE, NEVER = (f"{n:040x}" for n in (0xA, 0xB, 0xC, 0xD, 0xE))


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with serve(TOKEN) as server:
        server.history.extend([A, B, C])
        server.off_history.add(GONE)
        yield server
        assert_conforms(server.requests)


def test_githubs_status_is_the_relation(fake: FakeGitHub) -> None:
    history = GitHubHistory(TOKEN, base_url=fake.url)
    assert history.relation(REPO, None, C, A) == "behind"
    assert history.relation(REPO, None, A, C) == "ahead"
    assert history.relation(REPO, None, C, GONE) == "diverged"
    assert history.relation(REPO, None, C, C) == "identical"
    assert fake.calls()[0] == ("GET", f"/repos/{REPO}/compare/{C}...{A}")
    assert fake.requests[0].query == {"page": ["1"], "per_page": ["1"]}  # the comparison, not 250 commits
    assert fake.requests[0].headers["authorization"] == f"token {TOKEN}"


def test_a_commit_github_does_not_know_is_off_the_history_when_the_repository_is_readable(fake: FakeGitHub) -> None:
    assert GitHubHistory(TOKEN, base_url=fake.url).relation(REPO, None, NEVER, C) == "diverged"
    assert fake.calls()[-1] == ("GET", f"/repos/{REPO}")


def test_a_repository_the_token_cannot_see_is_a_refusal_not_a_divergence(fake: FakeGitHub) -> None:
    history = GitHubHistory(TOKEN, base_url=fake.url)
    fake.fail_next(404, "Not Found")
    fake.fail_next(404, "Not Found")
    with pytest.raises(ValueError, match="no repository"):
        history.relation(REPO, None, A, C)


def test_an_outage_is_transient_and_a_refusal_is_permanent(fake: FakeGitHub) -> None:
    history = GitHubHistory(TOKEN, base_url=fake.url)
    fake.fail_next(502)
    with pytest.raises(TransientError):
        history.relation(REPO, None, A, C)
    fake.fail_next(403, "API rate limit exceeded for installation ID 1.")
    with pytest.raises(TransientError):
        history.relation(REPO, None, A, C)
    fake.fail_next(401, "Bad credentials")
    with pytest.raises(ValueError, match="401") as refused:
        history.relation(REPO, None, A, C)
    assert TOKEN not in str(refused.value) and TOKEN not in repr(history)


@pytest.mark.parametrize(
    ("repo", "base", "head"),
    [("../../user", A, C), (REPO, "main", C), (REPO, A, "-x" + "0" * 38), (REPO, A, "\ud800"), ("a/b/c", A, C)],
)
def test_names_that_are_not_a_repository_and_two_shas_never_reach_github(
    fake: FakeGitHub, repo: str, base: str, head: str
) -> None:
    assert GitHubHistory(TOKEN, base_url=fake.url).relation(repo, None, base, head) == "unknown"
    assert fake.requests == []


def test_github_down_is_transient(fake: FakeGitHub) -> None:
    history = GitHubHistory(TOKEN, base_url="http://127.0.0.1:9")
    with pytest.raises(TransientError):
        history.relation(REPO, None, A, C)


def test_without_a_token_it_asks_anonymously(fake: FakeGitHub) -> None:
    history = GitHubHistory(None, base_url=fake.url)
    with pytest.raises(ValueError, match="401"):  # this server, unlike GitHub for a public repository, wants a token
        history.relation(REPO, None, A, C)
    assert "authorization" not in fake.requests[0].headers and "token=None" in repr(history)
