"""A local stand-in for api.github.com: commit statuses, check runs, deployments, permissions and comparisons.

It records every request, keeps what was created in memory (so a lookup sees earlier writes, as on GitHub) and
answers with the response examples of GitHub's own OpenAPI description (openapi/, the octokit cut),
patched with what was sent. Scripted errors are served before anything else. A request body that description does
not allow is refused as GitHub refuses it (422 "Invalid request." naming the field) and kept in `refused`.

With a `FakeApp` it also mints installation tokens as GitHub does: the app's JWT must be RS256-signed with the app's
key, name the app as `iss` and expire within ten minutes; a token answers for `token_lifetime` by the fake's clock
(`now`), and a request with an expired one gets GitHub's 401.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from relaunch.emulated.github_app import FakeApp, jwt_problem
from relaunch.emulated.github_check_runs import CheckRuns
from relaunch.emulated.github_comments import IssueComments
from relaunch.emulated.github_openapi import Recorded, body_problems, example
from relaunch.emulated.loopback import loopback_server

_REPO = r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
_STATUSES = re.compile(_REPO + r"/statuses/(?P<sha>[^/]+)$")
_DEPLOYMENTS = re.compile(_REPO + r"/deployments$")
_DEPLOYMENT_STATUSES = re.compile(_REPO + r"/deployments/(?P<id>\d+)/statuses$")
_PERMISSION = re.compile(_REPO + r"/collaborators/(?P<username>[^/]+)/permission$")
_COMPARE = re.compile(_REPO + r"/compare/(?P<base>[^/.]+)\.\.\.(?P<head>[^/.]+)$")
_REPOSITORY = re.compile(_REPO + r"$")
_ACCESS_TOKENS = re.compile(r"^/app/installations/(?P<id>[^/]+)/access_tokens$")


@dataclass
class ScriptedError:
    """An answer served instead of the next request's normal one."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeGitHub:
    """What was created, the requests received, and scripted errors (served first, in order)."""

    token: str
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    errors: list[ScriptedError] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    deployment_statuses: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    permissions: dict[str, str] = field(default_factory=dict)  # login -> base role; other logins are not users
    history: list[str] = field(default_factory=list)  # one line of commits, oldest first (every repository's)
    off_history: set[str] = field(default_factory=set)  # commits known but on no line (a force push left them)
    delay_s: float = 0.0
    app: FakeApp | None = None
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    issued: dict[str, datetime] = field(default_factory=dict)  # installation token -> when it expires
    answered: list[int] = field(default_factory=list)  # the status of every answer, in order
    refused: list[str] = field(default_factory=list)  # what was wrong with each body refused with a 422
    lock: threading.Lock = field(default_factory=threading.Lock)
    comments: IssueComments = field(default_factory=IssueComments)  # issue comments and GET /user
    check_runs: CheckRuns = field(default_factory=CheckRuns)  # created, read and updated check runs, kept

    def fail_next(self, status: int, message: str = "Server Error", **headers: str) -> None:
        """Answer the next request with `status` and GitHub's error body."""
        body = {"message": message, "documentation_url": "https://docs.github.com/rest"}
        self.errors.append(ScriptedError(status, body, dict(headers)))

    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests]

    def bodies(self, method: str, pattern: str) -> list[Any]:
        """Bodies of the requests whose method is `method` and whose path matches the regex `pattern`."""
        return [r.body for r in self.requests if r.method == method and re.fullmatch(pattern, r.path)]

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, dict]:
        answer = self._answer(method, raw_path, headers, body)
        with self.lock:
            self.answered.append(answer[0])
        return answer

    def _answer(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, dict]:
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        payload = json.loads(body) if body else None
        request = Recorded(method, path, parse_qs(parts.query), headers, payload)
        with self.lock:
            self.requests.append(request)
            if self.errors:
                error = self.errors.pop(0)
                return error.status, error.body, error.headers
        if method == "POST" and (m := _ACCESS_TOKENS.match(path)):
            return self._access_token(m, headers.get("authorization", ""), request)
        if not self._authorized(headers.get("authorization", "")):
            return 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}, {}
        actor = self._actor(headers.get("authorization", ""))
        return (
            self._refusal(request)
            or self.comments.answer(request, actor, self.url)
            or self.check_runs.answer(request, self.url)
            or self._route(method, path, request.query, payload)
        )

    def _actor(self, header: str) -> tuple[str, int | None] | None:
        """Who the credentials are: the token's user, or the App's bot (login, app id) for an installation token."""
        value = header.partition(" ")[2]
        if value in self.issued and self.app is not None:
            return f"{self.comments.app_slug}[bot]", int(self.app.app_id)
        return (self.comments.viewer, None) if value == self.token else None

    def _refusal(self, request: Recorded) -> tuple[int, Any, dict] | None:
        """GitHub's 422 for a body its OpenAPI description does not allow (recorded in `refused`), or None."""
        found = body_problems(request)
        if not found:
            return None
        with self.lock:
            self.refused += found
        return 422, {"message": "Invalid request.\n\n" + "\n".join(found), "documentation_url": _DOCS}, {}

    def _authorized(self, header: str) -> bool:
        kind, _, value = header.partition(" ")
        if kind not in ("token", "Bearer"):
            return False
        expires = self.issued.get(value)
        return value == self.token or (expires is not None and self.now() < expires)

    def _access_token(self, m: re.Match[str], header: str, request: Recorded) -> tuple[int, Any, dict]:
        """ "Create an installation access token for an app": the JWT checked as GitHub checks it, then a token."""
        kind, _, token = header.partition(" ")
        problem = (
            jwt_problem(self.app, token, self.now())
            if kind == "Bearer" and self.app
            else "A JSON web token is required"
        )
        if problem:
            return 401, {"message": problem, "documentation_url": _DOCS}, {}
        assert self.app is not None
        if m["id"] != str(self.app.installation_id):
            return 404, {"message": "Not Found", "documentation_url": _DOCS}, {}
        if refusal := self._refusal(request):
            return refusal
        body: dict[str, Any] = request.body or {}
        with self.lock:
            minted = f"ghs_fake{len(self.issued) + 1:032d}"
            expires = self.now().replace(microsecond=0) + self.app.token_lifetime
            self.issued[minted] = expires
        answer = example("POST /app/installations/{installation_id}/access_tokens", "201", "default")
        answer.update(token=minted, expires_at=expires.strftime("%Y-%m-%dT%H:%M:%SZ"))
        answer["permissions"] = body.get("permissions") or {"checks": "write", "statuses": "write", "metadata": "read"}
        if "repositories" in body:
            answer["repositories"] = [dict(answer["repositories"][0], name=n) for n in body["repositories"]]
        else:
            answer.update(repository_selection="all", repositories=[])
        return 201, answer, {}

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any, dict]:
        if method == "POST" and (m := _STATUSES.match(path)):
            return 201, self._status(m, body), {}
        if method == "POST" and (m := _DEPLOYMENTS.match(path)):
            return 201, self._create_deployment(m, body), {}
        if method == "GET" and (m := _DEPLOYMENTS.match(path)):
            return 200, self._list_deployments(m, query), {}
        if method == "POST" and (m := _DEPLOYMENT_STATUSES.match(path)):
            return self._deployment_status(m, body)
        if method == "GET" and (m := _DEPLOYMENT_STATUSES.match(path)):
            return self._deployment_statuses(m)
        if method == "GET" and (m := _PERMISSION.match(path)):
            return self._permission(m)
        if method == "GET" and (m := _COMPARE.match(path)):
            return self._compare(m)
        if method == "GET" and (m := _REPOSITORY.match(path)):
            return 200, {"full_name": f"{m['owner']}/{m['repo']}", "id": 1, "private": False}, {}
        return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, {}

    def _status(self, m: re.Match[str], body: dict[str, Any]) -> dict[str, Any]:
        answer = example("POST /repos/{owner}/{repo}/statuses/{sha}", "201", "default")
        answer.update({k: body.get(k) for k in ("state", "description", "target_url", "context")})
        answer["url"] = f"{self.url}/repos/{m['owner']}/{m['repo']}/statuses/{m['sha']}"
        return answer

    def _create_deployment(self, m: re.Match[str], body: dict[str, Any]) -> dict[str, Any]:
        answer = example("POST /repos/{owner}/{repo}/deployments", "201", "simple-example")
        with self.lock:
            deployment_id = len(self.deployments) + 1
            base = f"{self.url}/repos/{m['owner']}/{m['repo']}"
            answer.update(
                id=deployment_id,
                sha=body["ref"],
                ref=body["ref"],
                payload=body.get("payload", {}),
                environment=body.get("environment", "production"),
                original_environment=body.get("environment", "production"),
                description=body.get("description"),
                url=f"{base}/deployments/{deployment_id}",
                statuses_url=f"{base}/deployments/{deployment_id}/statuses",
                repository_url=base,
                production_environment=body.get("production_environment", False),
                repo=f"{m['owner']}/{m['repo']}",
            )
            self.deployments.append(answer)
            self.deployment_statuses[deployment_id] = []
        return answer

    def _list_deployments(self, m: re.Match[str], query: dict[str, list[str]]) -> list[dict[str, Any]]:
        wanted = {k: v[0] for k, v in query.items() if k in ("sha", "ref", "task", "environment")}
        with self.lock:
            found = [
                d
                for d in self.deployments
                if d["repo"] == f"{m['owner']}/{m['repo']}" and all(d.get(k) == v for k, v in wanted.items())
            ]
        return list(reversed(found))  # GitHub lists the newest first

    def _deployment_status(self, m: re.Match[str], body: dict[str, Any]) -> tuple[int, Any, dict]:
        deployment_id = int(m["id"])
        if deployment_id not in self.deployment_statuses:
            return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, {}
        answer = example("POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses", "201", "default")
        answer.update({k: v for k, v in body.items()})
        answer["deployment_url"] = f"{self.url}/repos/{m['owner']}/{m['repo']}/deployments/{deployment_id}"
        with self.lock:
            self.deployment_statuses[deployment_id].append(answer)
        return 201, answer, {}

    def _deployment_statuses(self, m: re.Match[str]) -> tuple[int, Any, dict]:
        """GitHub's "List deployment statuses": the deployment's statuses, newest first."""
        with self.lock:
            found = self.deployment_statuses.get(int(m["id"]))
            listed = None if found is None else list(reversed(found))
        if listed is None:
            return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, {}
        return 200, listed, {}

    def _permission(self, m: re.Match[str]) -> tuple[int, Any, dict]:
        """GitHub's shape (docs: "Get repository permissions for a user"): base role, role name, the user."""
        login = m["username"]
        if login not in self.permissions:
            return 404, {"message": f"{login} is not a user", "documentation_url": "https://docs.github.com/rest"}, {}
        role = self.permissions[login]
        legacy = {"maintain": "write", "triage": "read"}.get(role, role)  # as GitHub maps them in `permission`
        user = {"login": login, "id": 1, "type": "User", "site_admin": False}
        return 200, {"permission": legacy, "role_name": role, "user": user}, {}

    def _compare(self, m: re.Match[str]) -> tuple[int, Any, dict]:
        """GitHub's commit-comparison shape (docs: "Compare two commits"), its status from `history`."""
        base, head = m["base"], m["head"]
        for sha in (base, head):
            if sha not in self.history and sha not in self.off_history:
                return 404, {"message": f"No commit found for SHA: {sha}", "documentation_url": _DOCS}, {}
        if base == head:
            status, ahead, behind = "identical", 0, 0
        elif base in self.off_history or head in self.off_history:
            status, ahead, behind = "diverged", 1, 1
        else:
            step = self.history.index(head) - self.history.index(base)
            status, ahead, behind = ("ahead", step, 0) if step > 0 else ("behind", 0, -step)
        url = f"{self.url}/repos/{m['owner']}/{m['repo']}/compare/{base}...{head}"
        commit = {"sha": base, "url": f"{self.url}/repos/{m['owner']}/{m['repo']}/commits/{base}"}
        return (
            200,
            {
                "url": url,
                "html_url": url,
                "permalink_url": url,
                "diff_url": url + ".diff",
                "patch_url": url + ".patch",
                "base_commit": commit,
                "merge_base_commit": commit,
                "status": status,
                "ahead_by": ahead,
                "behind_by": behind,
                "total_commits": ahead,
                "commits": [],
                "files": [],
            },
            {},
        )


_DOCS = "https://docs.github.com/rest"


def _handler(fake: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload, extra = fake.handle(self.command, self.path, headers, body)
            if fake.delay_s:
                threading.Event().wait(fake.delay_s)
            out = b"" if status == 204 else json.dumps(payload).encode()  # No Content has no body
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(out)))
            for name, value in extra.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_PATCH = do_DELETE = _serve  # noqa: N815 (http.server's naming)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serve(token: str, app: FakeApp | None = None) -> Iterator[FakeGitHub]:
    """Run a FakeGitHub accepting `token` (and, with `app`, the tokens it mints) on a free loopback port."""
    fake = FakeGitHub(token=token, app=app)
    with loopback_server(_handler(fake)) as url:
        fake.url = url
        yield fake
