"""What the GitHub adapters share: who they act as (a token or a GitHub App installation), URL check, one PyGithub
client for reads, and how GitHub's errors read.

A GitHub App acts through installation tokens that expire an hour after they are minted. PyGithub's
`AppInstallationAuth` mints one on first use (POST /app/installations/{id}/access_tokens, authorized by a JWT it signs
RS256 with the app's key: iss the app id, iat a minute back, exp five minutes ahead) and, before every request, mints
a new one once the current token has less than 20 seconds left, so a long-lived process never sends an expired token
(github/Auth.py: `AppInstallationAuth.token`, `_is_expired`, ACCESS_TOKEN_REFRESH_THRESHOLD_SECONDS).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from relaunch.domain.ports import TransientError
from relaunch.settings import Settings, reveal

TIMEOUT_S = 10
REPO_NAME = re.compile(r"\A[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+\Z")
_PASSING = (429, 500, 502, 503, 504)


def checked_base_url(adapter: str, base_url: str) -> str:
    """`base_url` without its trailing slash; ValueError unless it is an http(s) URL."""
    if not re.match(r"^https?://[^/\s]+", base_url):
        raise ValueError(f"{adapter}: base_url must be an http(s) URL, got {base_url!r}")
    return base_url.rstrip("/")


@dataclass(frozen=True)
class GitHubApp:
    """A GitHub App installation to act as; the private key (PEM) stays a SecretStr, so no repr shows it."""

    app_id: str
    private_key: SecretStr
    installation_id: int

    def __post_init__(self) -> None:
        if not self.app_id or not self.private_key.get_secret_value().strip() or self.installation_id <= 0:
            raise ValueError("GitHubApp: app_id, private_key and a positive installation_id are required")


Credentials = SecretStr | GitHubApp  # a token, or an App installation


def credentials(token: str | GitHubApp | None) -> Credentials | None:
    """A token (stripped, kept secret) or the App as given; None for nothing or an empty token."""
    if isinstance(token, GitHubApp):
        return token
    return SecretStr(token.strip()) if token and token.strip() else None


def identity(settings: Settings) -> str | GitHubApp | None:
    """The token, or the App installation, that `settings` configure (they refuse both, or part of an App)."""
    key, app_id, installation = (
        settings.github_app_private_key,
        settings.github_app_id,
        settings.github_app_installation_id,
    )
    if key and reveal(key) and app_id and installation:
        return GitHubApp(app_id, key, installation)
    return reveal(settings.github_token)


def pygithub_auth(who: Credentials | None) -> Any:
    """PyGithub's Auth for a token, or an App installation (it mints and renews its own tokens); None: anonymous."""
    import github  # heavy: loaded on first use, never at import

    if isinstance(who, GitHubApp):
        app = github.Auth.AppAuth(who.app_id, who.private_key.get_secret_value())
        return app.get_installation_auth(who.installation_id)
    return github.Auth.Token(who.get_secret_value()) if who else None


def read_client(who: Credentials | None, base_url: str) -> Any:
    """A PyGithub client for a few reads: no retries (the command's redelivery retries), no throttle, lazy objects."""
    import github  # heavy: loaded on first use, never at import

    return github.Github(
        auth=pygithub_auth(who),
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
