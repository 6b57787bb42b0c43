"""Where two commits stand, asked of GitHub: `GET /repos/{owner}/{repo}/compare/{base}...{head}` (PyGithub).

Implements ports.CommitHistory on GCP, where no git runs. The answer's `status` is already the port's vocabulary
(ahead, behind, identical, diverged). GitHub answers 404 both for a commit it does not know and for a repository the
token cannot read: the repository is then looked up once to tell the two apart ("diverged" versus a refusal).
"""

from __future__ import annotations

import threading
from typing import Any

from relaunch.adapters.github.client import REPO_NAME, GitHubApp, checked_base_url, credentials, read_client, refusal
from relaunch.domain.gitnames import is_sha
from relaunch.domain.ports import TransientError

WHAT = "the comparison"


class GitHubHistory:
    """Compares two commits of a repository through GitHub's REST API."""

    def __init__(self, token: str | GitHubApp | None, *, base_url: str = "https://api.github.com") -> None:
        """`token` a token or a GitHub App installation; None or empty: anonymous, which GitHub allows for public
        repositories (60 requests an hour)."""
        self._base_url = checked_base_url("GitHubHistory", base_url)
        self._token = credentials(token)
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"GitHubHistory(base_url={self._base_url!r}, token={'**********' if self._token else None})"

    def relation(self, repo: str, clone_url: str | None, base: str, head: str) -> str:
        """`head` against `base` (see ports.CommitHistory); the clone URL is not needed here."""
        if not REPO_NAME.match(repo) or not (is_sha(base) and is_sha(head)):
            return "unknown"
        if base == head:
            return "identical"
        from github import GithubException  # heavy: loaded on first use, never at import

        try:
            return str(self._github().get_repo(repo).compare(base, head, comparison_commits_per_page=1).status)
        except GithubException as exc:
            if exc.status == 404:
                return self._missing_commit(repo)
            raise refusal(exc.status, str(exc), WHAT) from None
        except OSError as exc:  # connection refused or reset, timeouts: the command is retried
            raise TransientError(f"GitHub unreachable for {WHAT}: {type(exc).__name__}") from None

    def _missing_commit(self, repo: str) -> str:
        """After a 404: "diverged" when the repository is readable (so a commit is what it lacks), else refuse."""
        from github import GithubException

        try:
            self._github().get_repo(repo).update()  # a GET of the repository itself
        except GithubException as exc:
            if exc.status == 404:
                raise ValueError(f"GitHub shows no repository {repo!r} to this token (HTTP 404)") from None
            raise refusal(exc.status, str(exc), WHAT) from None
        except OSError as exc:
            raise TransientError(f"GitHub unreachable for {WHAT}: {type(exc).__name__}") from None
        return "diverged"

    def _github(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = read_client(self._token, self._base_url)
            return self._client
