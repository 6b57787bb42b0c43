"""Who sent a webhook delivery: the step before any parser, failing closed; the parsers read only what it returns.

A delivery is verified (GitHub's X-Hub-Signature-256; W&B's bearer token and/or X-Wandb-Signature), or its check is
skipped on purpose and the result says why: a replay re-reads a body that was verified when it arrived (its
signature header is redacted in the inbox), and development mode accepts unsigned deliveries. Nothing signs a body
to get it past its own check. First, as gidgethub does, the checks that cost nothing: the size, then the media type.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from relaunch.triggers.errors import PayloadTooLarge, Unauthorized, UnsupportedMediaType
from relaunch.triggers.signing import verify_github_signature, verify_wandb_signature

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
WebhookSource = Literal["github", "wandb"]
MEDIA_TYPES: dict[WebhookSource, tuple[str, ...]] = {"github": (JSON, FORM), "wandb": (JSON,)}
Skipped = Literal["verified at receipt", "unsigned (development mode)"]
Verification = Literal["authenticated", Skipped]
AT_RECEIPT: Skipped = "verified at receipt"  # a replay: its signature and token headers are redacted in the inbox
DEV_MODE: Skipped = "unsigned (development mode)"  # RELAUNCH_INSECURE_DEV_MODE with no secret configured


@dataclass(frozen=True)
class VerifiedDelivery:
    """A delivery past the verification step: `verification` says its sender was checked, or why that was skipped."""

    headers: Mapping[str, str]  # names lower-cased
    body: bytes
    media_type: str
    verification: Verification


def verify_github(
    headers: Mapping[str, str], body: bytes, secret: str | bytes | None, *, max_body: int
) -> VerifiedDelivery:
    """A GitHub delivery whose X-Hub-Signature-256 matches `secret`; a TriggerError (401 for the sender) otherwise."""
    lowered, media_type = _envelope("github", headers, body, max_body)
    signature = lowered.get("x-hub-signature-256")
    # Fail closed both ways, as gidgethub does: no secret configured, or a secret but no signature.
    if not secret:
        raise Unauthorized("no webhook secret is configured; refusing unsigned deliveries")
    if not signature:
        raise Unauthorized("X-Hub-Signature-256 is missing", field="X-Hub-Signature-256")
    if not verify_github_signature(secret, body, signature):
        raise Unauthorized("X-Hub-Signature-256 does not match the body", field="X-Hub-Signature-256")
    return VerifiedDelivery(lowered, body, media_type, "authenticated")


def verify_wandb(
    headers: Mapping[str, str], body: bytes, *, token: str | None, secret: str | None, max_body: int
) -> VerifiedDelivery:
    """A W&B delivery carrying each configured credential (both, when both are); a TriggerError otherwise."""
    lowered, media_type = _envelope("wandb", headers, body, max_body)
    if not token and not secret:
        raise Unauthorized("no W&B webhook token or secret is configured; refusing unauthenticated deliveries")
    if token and not _bearer_matches(lowered.get("authorization"), token):
        raise Unauthorized("Authorization is missing or is not the configured bearer token", field="Authorization")
    signature = lowered.get("x-wandb-signature")
    if secret and not signature:
        raise Unauthorized("X-Wandb-Signature is missing", field="X-Wandb-Signature")
    if secret and not verify_wandb_signature(secret, body, signature):
        raise Unauthorized("X-Wandb-Signature does not match the body", field="X-Wandb-Signature")
    return VerifiedDelivery(lowered, body, media_type, "authenticated")


def skip_verification(
    source: WebhookSource, headers: Mapping[str, str], body: bytes, why: Skipped, *, max_body: int
) -> VerifiedDelivery:
    """A delivery let through without checking its sender, marked with why; the size and media type still count."""
    lowered, media_type = _envelope(source, headers, body, max_body)
    return VerifiedDelivery(lowered, body, media_type, why)


def _envelope(
    source: WebhookSource, headers: Mapping[str, str], body: bytes, max_body: int
) -> tuple[dict[str, str], str]:
    """The headers with lower-cased names and the media type, once the size and the media type are acceptable."""
    lowered = {str(k).lower(): v for k, v in headers.items()}
    if len(body) > max_body:
        raise PayloadTooLarge(f"body is {len(body)} bytes, the limit is {max_body}")
    media_type, _, params = (lowered.get("content-type") or "").partition(";")
    media_type = media_type.strip().lower()
    if media_type not in MEDIA_TYPES[source]:
        raise UnsupportedMediaType(f"content type must be {JSON}, got {media_type or 'none'!r}", field="Content-Type")
    for param in params.split(";"):
        name, _, value = param.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(f"charset must be utf-8, got {charset!r}", field="Content-Type")
    return lowered, media_type


def _bearer_matches(header: str | None, token: str) -> bool:
    scheme, _, value = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return False
    received = value.strip().encode("utf-8", "surrogatepass")
    return hmac.compare_digest(received, token.encode("utf-8", "surrogatepass"))
