"""What the GitHub adapters that only read share: URL check, one PyGithub client, and how GitHub's errors read."""

from __future__ import annotations

import re
from typing import Any

from pydantic import SecretStr

from relaunch.domain.ports import TransientError

TIMEOUT_S = 10
REPO_NAME = re.compile(r"\A[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+\Z")
_PASSING = (429, 500, 502, 503, 504)


def checked_base_url(adapter: str, base_url: str) -> str:
    """`base_url` without its trailing slash; ValueError unless it is an http(s) URL."""
    if not re.match(r"^https?://[^/\s]+", base_url):
        raise ValueError(f"{adapter}: base_url must be an http(s) URL, got {base_url!r}")
    return base_url.rstrip("/")


def read_client(token: SecretStr | None, base_url: str) -> Any:
    """A PyGithub client for a few reads: no retries (the command's redelivery retries), no throttle, lazy objects."""
    import github  # heavy: loaded on first use, never at import

    return github.Github(
        auth=github.Auth.Token(token.get_secret_value()) if token else None,
        base_url=base_url,
        timeout=TIMEOUT_S,
        user_agent="relaunch",
        retry=None,
        seconds_between_requests=0,
        seconds_between_writes=0,
        lazy=True,  # no GET of the repository before the call that matters
    )


def refusal(status: int, said: str, what: str) -> Exception:
    """GitHub's error as ours: TransientError for an outage or a rate limit, ValueError for a refusal."""
    if status in _PASSING or (status == 403 and "rate limit" in said.lower()):
        return TransientError(f"GitHub answered {status} to {what}")
    return ValueError(f"GitHub refused {what} with HTTP {status}")
