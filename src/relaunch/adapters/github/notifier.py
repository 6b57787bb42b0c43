"""GitHub notifier (PyGithub): a commit status per stage, the gate's check run, a deployment per promotion.

Never raises: a notification that cannot be delivered is logged (without the token) and dropped.

Throttling is chosen, not inherited: GitHub asks integrations to leave a second between writes to stay clear of its
secondary rate limits, so `seconds_between_writes` defaults to 1 s (and 0.25 s between any two requests); tests pass
0. Retries are deliberately narrow (see `_retry`): PyGithub's default GithubRetry makes up to 10 attempts and waits
out rate limits (60 s for a secondary limit, up to the hourly reset for the primary one), which would stall the
orchestrator's invocation over a notification. A rate limit is logged instead, and the next notification tries again.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from itertools import islice
from typing import Any

from pydantic import SecretStr

from relaunch.adapters.github.client import GitHubApp, credentials, pygithub_auth
from relaunch.adapters.github.pr_comment import ReportComments
from relaunch.domain.model import Notification, TimelineEntry
from relaunch.domain.pr_report import comment_body
from relaunch.domain.reporting import (
    check_run,
    check_run_entry,
    commit_status,
    deployment,
    deployment_entry,
    deployment_status,
    run_url,
)

log = logging.getLogger(__name__)

TIMEOUT_S = 10
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")
_LOOKUP_LIMIT = 30  # one page of deployments of this commit and environment: a retry's twin is among the newest


class GitHubNotifier:
    """Reports notifications to GitHub; implements ports.Notifier."""

    def __init__(
        self,
        token: str | GitHubApp,
        *,
        base_url: str = "https://api.github.com",
        app_token: bool = False,
        public_url: str | None = None,
        seconds_between_writes: float = 1.0,
        seconds_between_requests: float = 0.25,
        timeline: Callable[[str, TimelineEntry], None] | None = None,
    ) -> None:
        """`token`: a token (`app_token` says whether it is an App installation's), or the App installation to act
        as, which also gets check runs. `timeline` (the store's append_timeline) records each deployment status
        GitHub accepted, with its deployment id, on the run's timeline."""
        who = credentials(token)
        if who is None:
            raise ValueError("GitHubNotifier: token is empty")
        if not re.match(r"^https?://[^/\s]+", base_url):
            raise ValueError(f"GitHubNotifier: base_url must be an http(s) URL, got {base_url!r}")
        if seconds_between_writes < 0 or seconds_between_requests < 0:
            raise ValueError("GitHubNotifier: seconds_between_writes and seconds_between_requests must be >= 0")
        self._token = who
        self._base_url = base_url.rstrip("/")
        self._app_token = app_token or isinstance(who, GitHubApp)
        self._public_url = public_url
        self._throttle = (seconds_between_requests, seconds_between_writes)
        self._timeline = timeline
        self._client: Any = None
        self._lock = threading.Lock()
        self._comments = ReportComments(who)

    def __repr__(self) -> str:
        return f"GitHubNotifier(base_url={self._base_url!r}, app_token={self._app_token}, token=**********)"

    def notify(self, notification: Notification) -> None:
        """Post the status, then the check run (app tokens) and the deployment (rollouts); log any failure."""
        n = notification
        if not n.repo or not n.sha or not _REPO.match(n.repo) or not _SHA.match(n.sha):
            log.info("GitHub: run %s has no usable repo/commit (%r@%r): nothing reported", n.run_id, n.repo, n.sha)
            return
        parts = [("status", self._status), ("check run", self._check_run), ("deployment", self._deployment)]
        parts.append(("pr comment", self._pr_comment))  # a pull request's gate verdict: its one report comment
        try:
            repo = self._github().get_repo(n.repo)
        except Exception as exc:  # the SDK is missing or refused its configuration
            self._log_failure("client", n, exc)
            return
        for part, send in parts:
            try:
                send(repo, n)
            except Exception as exc:  # a notification never blocks a run
                self._log_failure(part, n, exc)
                if _rate_limited(exc):
                    return  # more requests now only extend the limit

    # -- parts -----------------------------------------------------------------------------------------------

    def _status(self, repo: Any, n: Notification) -> None:
        repo.get_commit(n.sha).create_status(**commit_status(n, self._target(n)))

    def _check_run(self, repo: Any, n: Notification) -> None:
        body = check_run(n, self._target(n)) if self._app_token else None  # checks need a GitHub App
        if body is not None:
            created = repo.create_check_run(**body)
            if self._timeline is not None and n.stage == "gate":  # its buttons follow the run by this id
                self._timeline(n.run_id, check_run_entry(created.id))

    def _deployment(self, repo: Any, n: Notification) -> None:
        body = deployment(n)
        if body is None:
            return
        existing = self._find_deployment(repo, n)
        target = existing if existing is not None else repo.create_deployment(**body)
        previous = _last_state(existing) if existing is not None and n.state == "failure" else None
        status = deployment_status(n, self._target(n), previous=previous)
        target.create_status(**status)
        if self._timeline is not None:
            self._timeline(n.run_id, deployment_entry(n, status, target.id))

    def _pr_comment(self, repo: Any, n: Notification) -> None:
        body = comment_body(n, self._target(n))
        if body is not None and n.pr_number is not None:
            self._comments.post(self._github(), repo, n.pipeline, n.pr_number, body)

    def _find_deployment(self, repo: Any, n: Notification) -> Any:
        """This run's deployment of this commit to this environment, if an earlier notification created it."""
        for candidate in islice(repo.get_deployments(sha=n.sha, environment=n.endpoint), _LOOKUP_LIMIT):
            payload = candidate.payload
            if isinstance(payload, dict) and payload.get("run_id") == n.run_id:
                return candidate
        return None

    # -- plumbing --------------------------------------------------------------------------------------------

    def _target(self, n: Notification) -> str | None:
        return n.target_url or run_url(self._public_url, n.run_id)

    def _github(self) -> Any:
        with self._lock:
            if self._client is None:
                import github  # heavy: loaded on first use, never at import

                seconds_between_requests, seconds_between_writes = self._throttle
                self._client = github.Github(
                    auth=pygithub_auth(self._token),
                    base_url=self._base_url,
                    timeout=TIMEOUT_S,
                    user_agent="relaunch",
                    retry=_retry(),
                    seconds_between_requests=seconds_between_requests,
                    seconds_between_writes=seconds_between_writes,
                    lazy=True,  # no GET of the repo or commit before each write
                )
            return self._client

    def _log_failure(self, part: str, n: Notification, exc: Exception) -> None:
        status = getattr(exc, "status", None)
        what = f"HTTP {status}: {_message(exc)}" if status else f"{type(exc).__name__}: {exc}"
        secret = self._token.get_secret_value() if isinstance(self._token, SecretStr) else None
        log.warning(
            "GitHub %s for run %s (%s %s on %s@%s) not sent: %s",
            part,
            n.run_id,
            n.stage,
            n.state,
            n.repo,
            (n.sha or "")[:7],
            (what.replace(secret, "**********") if secret else what)[:500],
        )


def _last_state(found: Any) -> str | None:
    """The deployment's newest status (GitHub lists them newest first): a failure after a success makes it inactive."""
    newest = next(iter(found.get_statuses()), None)
    return str(newest.state) if newest is not None else None


def _message(exc: Exception) -> str:
    """GitHub's own explanation: the exception's message, else the "message" of the error body."""
    data = getattr(exc, "data", None)
    return str(getattr(exc, "message", None) or (data.get("message") if isinstance(data, dict) else None) or "")


def _rate_limited(exc: Exception) -> bool:
    status = getattr(exc, "status", None)
    return status == 429 or (status == 403 and "rate limit" in _message(exc).lower())


def _retry() -> Any:
    """Two quick retries of GitHub's brief edge failures (502/503/504) and refused connections; nothing else.

    Statuses and deployment statuses are safe to repeat (the newest per context wins); a repeated deployment
    creation is found again by run id. Read timeouts are not retried: the write may have landed. Rate limits
    (403/429) are not retried: waiting them out would hold the run.
    """
    from urllib3.util.retry import Retry

    return Retry(
        total=2,
        connect=2,
        read=0,
        status=2,
        backoff_factor=0.5,
        status_forcelist=(502, 503, 504),
        allowed_methods=frozenset({"GET", "POST"}),
        respect_retry_after_header=False,
        raise_on_status=False,
    )
