"""GitHubPermissions through the real PyGithub client against a local api.github.com (tests/github_server.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from relaunch.adapters.github.permissions import GitHubPermissions
from relaunch.domain.ports import TransientError
from tests.github_server import FakeGitHub, serve
from tests.integration.github.openapi import assert_conforms

pytest.importorskip("github", reason="PyGithub is not installed")

TOKEN = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"
REPO = "Codertocat/Hello-World"


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with serve(TOKEN) as server:
        server.permissions.update({"maintainer": "maintain", "owner": "admin", "reader": "read", "triager": "triage"})
        yield server
        assert_conforms(server.requests)


def test_the_permission_is_githubs_answer_for_that_login(fake: FakeGitHub) -> None:
    permissions = GitHubPermissions(TOKEN, base_url=fake.url)
    answers = {login: permissions.permission(REPO, login) for login in ("maintainer", "owner", "reader", "triager")}
    assert answers == {"maintainer": "write", "owner": "admin", "reader": "read", "triager": "read"}
    assert fake.calls()[0] == ("GET", f"/repos/{REPO}/collaborators/maintainer/permission")
    assert fake.requests[0].headers["authorization"] == f"token {TOKEN}"


def test_an_unknown_user_has_no_permission(fake: FakeGitHub) -> None:
    assert GitHubPermissions(TOKEN, base_url=fake.url).permission(REPO, "mallory") == "none"


@pytest.mark.parametrize("login", ["../../../user", "a/b", "x?y", "\ud800", ""])
def test_a_login_no_github_user_can_have_is_none_and_never_reaches_the_api_path(fake: FakeGitHub, login: str) -> None:
    assert GitHubPermissions(TOKEN, base_url=fake.url).permission(REPO, login) == "none"
    assert fake.requests == []


def test_a_github_outage_is_transient_and_a_refusal_is_permanent_without_the_token(fake: FakeGitHub) -> None:
    permissions = GitHubPermissions(TOKEN, base_url=fake.url)
    fake.fail_next(502)
    with pytest.raises(TransientError):
        permissions.permission(REPO, "owner")
    fake.fail_next(403, "Must have push access to view collaborator permission.")
    with pytest.raises(ValueError, match="403") as refused:
        permissions.permission(REPO, "owner")
    assert TOKEN not in str(refused.value) and TOKEN not in repr(permissions)
