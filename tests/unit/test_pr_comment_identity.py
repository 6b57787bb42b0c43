"""ReportComments when GitHub will not say who relaunch is (an installation token passed as a plain token).

In-memory stand-ins of PyGithub's Issue and IssueComment: relaunch learns its identity from the comment it posts and
settles on one comment; a marked comment of anyone else is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from relaunch.adapters.github.pr_comment import ReportComments
from relaunch.domain.pr_report import marker


@dataclass
class User:
    login: str


@dataclass
class Comment:
    id: int
    body: str
    user: User
    performed_via_github_app: Any = None
    issue: FakeIssue | None = None

    def edit(self, body: str) -> None:
        self.body = body

    def delete(self) -> None:
        assert self.issue is not None
        self.issue.comments.remove(self)


@dataclass
class FakeIssue:
    comments: list[Comment] = field(default_factory=list)
    author: str = "github-actions[bot]"

    def get_comments(self) -> list[Comment]:
        return list(self.comments)

    def create_comment(self, body: str) -> Comment:
        made = Comment(max((c.id for c in self.comments), default=0) + 1, body, User(self.author), issue=self)
        self.comments.append(made)
        return made


class Repo:
    def __init__(self, issue: FakeIssue) -> None:
        self.issue = issue

    def get_issue(self, number: int) -> FakeIssue:
        return self.issue


class Refusing:
    def get_user(self) -> Any:
        raise RuntimeError("403 Resource not accessible by integration")


def test_relaunch_learns_who_it_is_from_its_first_comment_and_then_edits_it() -> None:
    issue = FakeIssue([Comment(1, marker("digits") + "\nnot ours", User("mallory"))])
    issue.comments[0].issue = issue
    comments = ReportComments(SecretStr("ghs_an-installation-token"))
    first = marker("digits") + "\nfirst"
    comments.post(Refusing(), Repo(issue), "digits", 12, first)
    comments.post(Refusing(), Repo(issue), "digits", 12, marker("digits") + "\nsecond")

    assert [(c.user.login, c.body.splitlines()[-1]) for c in issue.comments] == [
        ("mallory", "not ours"),
        ("github-actions[bot]", "second"),
    ]
