"""GitHub's word on who may approve: `GET /repos/{owner}/{repo}/collaborators/{username}/permission` (PyGithub).

Implements ports.RepoPermissions. The answer's `permission` is GitHub's base role (maintain reads as write, triage
as read, a custom role as its base), which is exactly the line an approval draws. The token needs push access to the
repository (GitHub refuses this endpoint to others on public repositories).
"""

from __future__ import annotations

import re
import threading
from typing import Any

from pydantic import SecretStr

from relaunch.ports import TransientError

TIMEOUT_S = 10
_REPO = re.compile(r"\A[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+\Z")
_LOGIN = re.compile(r"\A[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?\Z")
KNOWN = frozenset({"admin", "maintain", "write", "triage", "read", "none"})


class GitHubPermissions:
    """Asks GitHub for a user's permission on a repository; unknown users have none."""

    def __init__(self, token: str, *, base_url: str = "https://api.github.com") -> None:
        if not token or not token.strip():
            raise ValueError("GitHubPermissions: token is empty")
        if not re.match(r"^https?://[^/\s]+", base_url):
            raise ValueError(f"GitHubPermissions: base_url must be an http(s) URL, got {base_url!r}")
        self._token = SecretStr(token.strip())
        self._base_url = base_url.rstrip("/")
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"GitHubPermissions(base_url={self._base_url!r}, token=**********)"

    def permission(self, repo: str, login: str) -> str:
        """admin, write, read or none (maintain and triage arrive as write and read); errors as ports says."""
        if not _REPO.match(repo):
            raise ValueError(f"not a GitHub owner/name: {repo[:100]!r}")
        if not _LOGIN.match(login):  # no GitHub user is called that: nobody to ask about
            return "none"
        from github import GithubException  # heavy: loaded on first use, never at import

        try:
            answer = self._github().get_repo(repo).get_collaborator_permission(login)
        except GithubException as exc:
            if exc.status == 404:  # no such user (or repository): nobody to approve
                return "none"
            if exc.status in (429, 500, 502, 503, 504) or (exc.status == 403 and "rate limit" in str(exc).lower()):
                raise TransientError(f"GitHub answered {exc.status} to the permission check") from None
            raise ValueError(f"GitHub refused the permission check with HTTP {exc.status}") from None
        except OSError as exc:  # connection refused or reset, timeouts: the command is retried
            raise TransientError(f"GitHub unreachable for the permission check: {type(exc).__name__}") from None
        return answer if answer in KNOWN else "none"

    def _github(self) -> Any:
        with self._lock:
            if self._client is None:
                import github

                self._client = github.Github(
                    auth=github.Auth.Token(self._token.get_secret_value()),
                    base_url=self._base_url,
                    timeout=TIMEOUT_S,
                    user_agent="relaunch",
                    retry=None,  # a failed check is retried by the command's redelivery, never by waiting here
                    seconds_between_requests=0,  # one read per approval label
                    seconds_between_writes=0,  # no writes
                    lazy=True,  # no GET of the repository first
                )
            return self._client
