"""Webhook signatures (GitHub's X-Hub-Signature-256, W&B's X-Wandb-Signature): compute and verify, in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac

SIGNATURE_PREFIX = "sha256="


def _key(secret: bytes | str) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def github_signature(secret: bytes | str, body: bytes) -> str:
    """The X-Hub-Signature-256 value GitHub sends for `body`: "sha256=" + hex HMAC-SHA256."""
    return SIGNATURE_PREFIX + hmac.new(_key(secret), body, hashlib.sha256).hexdigest()


def verify_github_signature(secret: bytes | str, body: bytes, header_value: str | None) -> bool:
    """True when `header_value` is the signature of `body` under `secret`; an empty secret never verifies."""
    if not secret or not header_value or not header_value.isascii():
        return False
    expected = github_signature(secret, body).encode("ascii")
    return hmac.compare_digest(expected, header_value.strip().encode("ascii"))


def wandb_signature(secret: bytes | str, body: bytes) -> str:
    """The X-Wandb-Signature value W&B sends for `body`: base64 of the raw HMAC-SHA256 digest."""
    return base64.b64encode(hmac.new(_key(secret), body, hashlib.sha256).digest()).decode("ascii")


def verify_wandb_signature(secret: bytes | str, body: bytes, header_value: str | None) -> bool:
    """True when `header_value` is the W&B signature of `body` under `secret`; an empty secret never verifies."""
    if not secret or not header_value or not header_value.isascii():
        return False
    expected = wandb_signature(secret, body).encode("ascii")
    return hmac.compare_digest(expected, header_value.strip().encode("ascii"))
