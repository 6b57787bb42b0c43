"""GitHub's word on who may approve: `GET /repos/{owner}/{repo}/collaborators/{username}/permission` (PyGithub).

Implements ports.RepoPermissions. The answer's `permission` is GitHub's base role (maintain reads as write, triage
as read, a custom role as its base), which is exactly the line an approval draws. The token needs push access to the
repository (GitHub refuses this endpoint to others on public repositories); a GitHub App needs Metadata read.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from relaunch.adapters.github.client import REPO_NAME, GitHubApp, checked_base_url, credentials, read_client, refusal
from relaunch.domain.ports import TransientError

_LOGIN = re.compile(r"\A[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?\Z")
KNOWN = frozenset({"admin", "maintain", "write", "triage", "read", "none"})


class GitHubPermissions:
    """Asks GitHub for a user's permission on a repository; unknown users have none."""

    def __init__(self, token: str | GitHubApp, *, base_url: str = "https://api.github.com") -> None:
        """`token`: a token, or the GitHub App installation to act as."""
        who = credentials(token)
        if who is None:
            raise ValueError("GitHubPermissions: token is empty")
        self._base_url = checked_base_url("GitHubPermissions", base_url)
        self._token = who
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"GitHubPermissions(base_url={self._base_url!r}, token=**********)"

    def permission(self, repo: str, login: str) -> str:
        """admin, write, read or none (maintain and triage arrive as write and read); errors as ports says."""
        if not REPO_NAME.match(repo):
            raise ValueError(f"not a GitHub owner/name: {repo[:100]!r}")
        if not _LOGIN.match(login):  # no GitHub user is called that: nobody to ask about
            return "none"
        from github import GithubException  # heavy: loaded on first use, never at import

        try:
            answer = self._github().get_repo(repo).get_collaborator_permission(login)
        except GithubException as exc:
            if exc.status == 404:  # no such user (or repository): nobody to approve
                return "none"
            raise refusal(exc.status, str(exc), "the permission check") from None
        except OSError as exc:  # connection refused or reset, timeouts: the command is retried
            raise TransientError(f"GitHub unreachable for the permission check: {type(exc).__name__}") from None
        return answer if answer in KNOWN else "none"

    def _github(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = read_client(self._token, self._base_url)
            return self._client
