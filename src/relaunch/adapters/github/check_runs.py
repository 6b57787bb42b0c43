"""Updates relaunch's gate check runs (PyGithub): their buttons, and a note on top of their report.

Implements service.check_run_step.CheckRunUpdates. GitHub's "Update a check run" replaces `output` whole, so the
check run is read first (GET), and its report is sent back under the note (domain/reporting.noted_output). Never
raises: a check run is a notification, and one that cannot be updated is logged (without the token) and dropped.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from pydantic import SecretStr

from relaunch.adapters.github.client import (
    REPO_NAME,
    TIMEOUT_S,
    GitHubApp,
    checked_base_url,
    credentials,
    pygithub_auth,
)
from relaunch.domain.reporting import noted_output

log = logging.getLogger(__name__)


class GitHubCheckRuns:
    """Reads and updates check runs of a GitHub App installation (only an App may update its check runs)."""

    def __init__(
        self, app: str | GitHubApp, *, base_url: str = "https://api.github.com", seconds_between_writes: float = 1.0
    ) -> None:
        """`app`: the installation to act as (or its installation token); writes are spaced as the notifier's."""
        who = credentials(app)
        if who is None:
            raise ValueError("GitHubCheckRuns: token is empty")
        if seconds_between_writes < 0:
            raise ValueError("GitHubCheckRuns: seconds_between_writes must be >= 0")
        self._who = who
        self._base_url = checked_base_url("GitHubCheckRuns", base_url)
        self._between_writes = seconds_between_writes
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"GitHubCheckRuns(base_url={self._base_url!r}, token=**********)"

    def update(self, repo: str, check_run_id: int, note: str, buttons: list[dict[str, str]] | None) -> bool:
        """Put `note` on top of the check run's report and, unless `buttons` is None, replace its buttons."""
        if not REPO_NAME.match(repo) or check_run_id < 1:
            log.warning("GitHub check run %r of %r: not a check run relaunch can update", check_run_id, repo[:100])
            return False
        try:
            check_run = self._github().get_repo(repo).get_check_run(check_run_id)
            output = check_run.output
            body = noted_output(note, str(output.summary or ""), output.text)
            if buttons is None:
                check_run.edit(output=body)
            else:
                check_run.edit(output=body, actions=buttons)
        except Exception as exc:  # a notification never blocks a run
            self._log_failure(repo, check_run_id, exc)
            return False
        return True

    def _github(self) -> Any:
        with self._lock:
            if self._client is None:
                import github  # heavy: loaded on first use, never at import

                self._client = github.Github(
                    auth=pygithub_auth(self._who),
                    base_url=self._base_url,
                    timeout=TIMEOUT_S,
                    user_agent="relaunch",
                    retry=None,  # a failed update is logged; the next change of the buttons sends them again
                    seconds_between_requests=0,
                    seconds_between_writes=self._between_writes,
                    lazy=True,  # no GET of the repository before the check run's
                )
            return self._client

    def _log_failure(self, repo: str, check_run_id: int, exc: Exception) -> None:
        status = getattr(exc, "status", None)
        what = f"HTTP {status}" if status else type(exc).__name__
        secret = self._who.get_secret_value() if isinstance(self._who, SecretStr) else None
        said = str(getattr(exc, "data", "") or exc)[:300]
        said = said.replace(secret, "**********") if secret else said
        log.warning("GitHub check run %d of %s not updated: %s: %s", check_run_id, repo, what, said)
