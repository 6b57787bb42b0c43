"""Fail closed: a webhook function serves nothing without its secret, and lets a delivery through unsigned only in
development mode, saying so on every request.

Importing a function builds nothing (no client at import time): the app is built on the first request. A function
whose app cannot be built, or that has no secret (and is not in development mode), answers every request 503 and
never reads a delivery, as a function that refused to start would.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from relaunch import bootstrap
from relaunch.domain.model import FunctionName
from relaunch.settings import Settings, reveal
from relaunch.triggers.verify import (
    DEV_MODE,
    VerifiedDelivery,
    WebhookSource,
    skip_verification,
    verify_github,
    verify_wandb,
)

log = logging.getLogger(__name__)

GITHUB_SECRET = "RELAUNCH_GITHUB_WEBHOOK_SECRET"
WANDB_SECRETS = "RELAUNCH_WANDB_WEBHOOK_TOKEN or RELAUNCH_WANDB_WEBHOOK_SECRET"


def _wandb_credentials(settings: Settings) -> tuple[str | None, str | None]:
    return reveal(settings.wandb_webhook_token), reveal(settings.wandb_webhook_secret)


# Each webhook function: whether its secret is configured, and the variables that configure it.
_SECRETS: dict[str, tuple[Callable[[Settings], bool], str]] = {
    "github_webhook": (lambda s: s.webhook_secret() is not None, GITHUB_SECRET),
    "wandb_webhook": (lambda s: any(_wandb_credentials(s)), WANDB_SECRETS),
}


class NotServing(Exception):
    """A webhook function cannot serve: its app cannot be built, or its secret is missing (fail closed)."""


def serving(function: str) -> bootstrap.App:
    """This process's App (built on first use) for `function`; NotServing if it cannot be built or has no secret."""
    try:
        app = bootstrap.app()
    except Exception as exc:  # settings that do not validate: the details (maybe a secret's value) go to the log only
        log.exception("%s: the app cannot be built; refusing every delivery (fail closed)", function)
        raise NotServing(
            f"{function}: not configured ({type(exc).__name__}, see the function's log); refusing deliveries "
            "(fail closed)"
        ) from None
    configured, variables = _SECRETS[function]
    if not configured(app.settings) and not app.settings.insecure_dev_mode:
        log.error("%s: %s is not set; refusing every delivery (fail closed)", function, variables)
        raise NotServing(
            f"{function}: {variables} is not set; refusing deliveries (fail closed). Set it, or set "
            "RELAUNCH_INSECURE_DEV_MODE=true to accept unsigned deliveries during development."
        )
    return app


def github_delivery(settings: Settings, headers: Mapping[str, str], body: bytes) -> VerifiedDelivery:
    """A GitHub delivery verified with the configured secret, or let through unsigned in development mode."""
    secret = settings.webhook_secret()
    if secret is None and settings.insecure_dev_mode:
        return _unsigned(FunctionName.GITHUB_WEBHOOK, "github", headers, body, settings.max_body_bytes)
    return verify_github(headers, body, secret, max_body=settings.max_body_bytes)


def wandb_delivery(settings: Settings, headers: Mapping[str, str], body: bytes, *, max_body: int) -> VerifiedDelivery:
    """A W&B delivery authenticated with the configured token and/or secret, or (as for GitHub) let through unsigned."""
    token, secret = _wandb_credentials(settings)
    if token is None and secret is None and settings.insecure_dev_mode:
        return _unsigned(FunctionName.WANDB_WEBHOOK, "wandb", headers, body, max_body)
    return verify_wandb(headers, body, token=token, secret=secret, max_body=max_body)


def _unsigned(
    function: str, source: WebhookSource, headers: Mapping[str, str], body: bytes, max_body: int
) -> VerifiedDelivery:
    delivery = skip_verification(source, headers, body, DEV_MODE, max_body=max_body)
    log.warning(
        "!!! %s: INSECURE DEVELOPMENT MODE: no %s, accepting an UNSIGNED delivery from anyone !!!",
        function,
        _SECRETS[function][1],
    )
    return delivery
