"""Fail closed: a webhook function refuses to start without its secret, unless development mode says otherwise."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from relaunch import bootstrap
from relaunch.service.ingest_replay import trusted_github, trusted_wandb
from relaunch.settings import Settings, reveal

log = logging.getLogger(__name__)
_warned: set[str] = set()


class MissingSecret(RuntimeError):
    """A webhook function was started with no secret configured (and not in insecure development mode)."""


def require_secret(function: str, configured: bool, variables: str) -> None:
    """Raise MissingSecret unless the secret is configured or RELAUNCH_INSECURE_DEV_MODE=true (then warn, once)."""
    if configured:
        return
    if not bootstrap.app().settings.insecure_dev_mode:
        raise MissingSecret(
            f"{function}: {variables} is not set; refusing to start (fail closed). Set it, or set "
            "RELAUNCH_INSECURE_DEV_MODE=true to accept unsigned deliveries during development."
        )
    if function not in _warned:
        _warned.add(function)
        log.warning(
            "!!! %s: INSECURE DEVELOPMENT MODE: no %s, accepting UNSIGNED deliveries from anyone !!!",
            function,
            variables,
        )


def github_credentials(settings: Settings, headers: Mapping[str, str], body: bytes) -> tuple[Mapping[str, str], str]:
    """The headers and secret to verify a GitHub delivery with (re-signed when development mode accepts it)."""
    secret = settings.webhook_secret()
    if secret is None and settings.insecure_dev_mode:
        return trusted_github(headers, body)
    return headers, secret or ""


def wandb_credentials(
    settings: Settings, headers: Mapping[str, str], body: bytes
) -> tuple[Mapping[str, str], str | None, str | None]:
    """The headers, token and secret to authenticate a W&B delivery with (as for GitHub in development mode)."""
    token, secret = reveal(settings.wandb_webhook_token), reveal(settings.wandb_webhook_secret)
    if token is None and secret is None and settings.insecure_dev_mode:
        trusted, key = trusted_wandb(headers, body)
        return trusted, None, key
    return headers, token, secret
