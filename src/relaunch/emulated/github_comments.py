"""The GitHub stand-in's issue comments (a pull request's conversation) and "Get the authenticated user".

Answers as api.github.com does, with the response examples of the OpenAPI cut patched with what was sent: comments
are listed oldest first, 30 a page (at most 100, `per_page`) with a Link header to the next page; each is authored by
whoever the request authenticated as: the token's user (`viewer`), or, for an App installation token, the App's bot
with `performed_via_github_app`. A locked conversation refuses new comments with GitHub's 403.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from relaunch.emulated.github_openapi import Recorded, example

_REPO = r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
_ISSUE_COMMENTS = re.compile(_REPO + r"/issues/(?P<number>\d+)/comments$")
_COMMENT = re.compile(_REPO + r"/issues/comments/(?P<id>\d+)$")
_DOCS = "https://docs.github.com/rest"
_STAMP = "2026-01-01T00:00:00Z"

Answer = tuple[int, Any, dict[str, str]]


@dataclass
class IssueComments:
    """Every repository's issue comments by id; `on_list` runs after a listing is taken (to script a race)."""

    viewer: str = "octocat"
    app_slug: str = "relaunch"
    items: dict[int, dict[str, Any]] = field(default_factory=dict)
    locked: bool = False
    on_list: Callable[[], None] | None = None
    created: int = 0  # ids are never reused, even after a deletion
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, repo: str, number: int, body: str, *, login: str, app_id: int | None = None) -> dict[str, Any]:
        """Create a comment as `login` (an App's bot when `app_id` is given), as if posted through GitHub."""
        answer = example("POST /repos/{owner}/{repo}/issues/{issue_number}/comments", "201", "default")
        with self.lock:
            self.created += 1
            comment_id = self.created
            answer.update(id=comment_id, body=body, created_at=_STAMP, updated_at=_STAMP, repo=repo, number=number)
            answer["user"] = dict(answer["user"], login=login, type="Bot" if app_id else "User")
            answer["performed_via_github_app"] = {"id": app_id, "slug": self.app_slug} if app_id else None
            self.items[comment_id] = answer
        return answer

    def remove(self, comment_id: int) -> None:
        """Delete a comment, as a maintainer does on the page."""
        with self.lock:
            self.items.pop(comment_id, None)

    def listing(self, repo: str, number: int) -> list[dict[str, Any]]:
        """The comments of one issue or pull request, oldest first."""
        with self.lock:
            return [dict(c) for _, c in sorted(self.items.items()) if c["repo"] == repo and c["number"] == number]

    def answer(self, request: Recorded, actor: tuple[str, int | None] | None, base_url: str) -> Answer | None:
        """The answer to a comment request (None: not one); `actor` is (login, app id) of the credentials."""
        if request.path == "/user" and request.method == "GET":
            return self._user(actor)
        if (m := _ISSUE_COMMENTS.match(request.path)) and actor:
            repo, number = f"{m['owner']}/{m['repo']}", int(m["number"])
            if request.method == "GET":
                return self._list(repo, number, request.query, base_url)
            if request.method == "POST":
                return self._create(repo, number, request.body, actor, base_url)
        if (m := _COMMENT.match(request.path)) and request.method in ("PATCH", "DELETE"):
            return self._change(int(m["id"]), f"{m['owner']}/{m['repo']}", request, base_url)
        return None

    def _user(self, actor: tuple[str, int | None] | None) -> Answer:
        if actor is None or actor[1] is not None:  # an installation token is no user
            return 403, {"message": "Resource not accessible by integration", "documentation_url": _DOCS}, {}
        answer = example("GET /user", "200", "response-with-public-profile-information")
        answer.update(login=actor[0])
        return 200, answer, {}

    def _list(self, repo: str, number: int, query: dict[str, list[str]], base_url: str) -> Answer:
        size = min(int((query.get("per_page") or ["30"])[0]), 100)
        page = max(int((query.get("page") or ["1"])[0]), 1)
        found = self.listing(repo, number)
        if self.on_list is not None:
            self.on_list()
        shown = [_public(c, base_url) for c in found[(page - 1) * size : page * size]]
        url = f"{base_url}/repos/{repo}/issues/{number}/comments?per_page={size}&page={page + 1}"
        headers = {"Link": f'<{url}>; rel="next"'} if len(found) > page * size else {}
        return 200, shown, headers

    def _create(
        self, repo: str, number: int, body: dict[str, Any], actor: tuple[str, int | None], base_url: str
    ) -> Answer:
        if self.locked:
            return 403, {"message": "Unable to create comment because issue is locked.", "documentation_url": _DOCS}, {}
        return 201, _public(self.add(repo, number, body["body"], login=actor[0], app_id=actor[1]), base_url), {}

    def _change(self, comment_id: int, repo: str, request: Recorded, base_url: str) -> Answer:
        with self.lock:
            found = self.items.get(comment_id)
            if found is None or found["repo"] != repo:
                return 404, {"message": "Not Found", "documentation_url": _DOCS}, {}
            if request.method == "DELETE":
                del self.items[comment_id]
                return 204, None, {}
            found.update(body=request.body["body"], updated_at=_STAMP)
            return 200, _public(found, base_url), {}


def _public(comment: dict[str, Any], base_url: str) -> dict[str, Any]:
    """A comment as GitHub shows it, its URLs on this server, without the stand-in's own bookkeeping."""
    shown = {k: v for k, v in comment.items() if k not in ("repo", "number")}
    repo, number = comment["repo"], comment["number"]
    shown["url"] = f"{base_url}/repos/{repo}/issues/comments/{comment['id']}"
    shown["issue_url"] = f"{base_url}/repos/{repo}/issues/{number}"
    shown["html_url"] = f"https://github.com/{repo}/pull/{number}#issuecomment-{comment['id']}"
    return shown
