"""GitHub App authentication as api.github.com checks it: the app's JWT, before an installation token is minted."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass
class FakeApp:
    """The GitHub App the fake mints installation tokens for: its id, public key (PEM) and one installation."""

    app_id: str
    public_key: str
    installation_id: int
    token_lifetime: timedelta = timedelta(hours=1)


def jwt_problem(app: FakeApp, token: str, now: datetime) -> str | None:
    """What GitHub would say of this app JWT, or None: RS256 by the app's key, `iss` the app, at most 10 minutes."""
    claims = _verified_claims(app, token)
    if claims is None:
        return "A JSON web token could not be decoded"
    at = now.timestamp()
    if str(claims.get("iss")) != app.app_id:
        return f"Integration not found for iss {claims.get('iss')!r}"
    if not isinstance(claims.get("exp"), int) or not isinstance(claims.get("iat"), int):
        return "'Expiration time' and 'Issued at' claims are required"
    if claims["exp"] <= at:
        return "'Expiration time' claim ('exp') must be a numeric value representing the future time"
    if claims["exp"] > at + 600 or claims["exp"] - claims["iat"] > 660:
        return "'Expiration time' claim ('exp') is too far in the future"
    if claims["iat"] > at + 60:
        return "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
    return None


def _verified_claims(app: FakeApp, token: str) -> dict[str, Any] | None:
    """The claims of an RS256 JWT signed with the app's key, or None (google-auth verifies, as PyJWT would)."""
    from google.auth import crypt

    try:
        head, payload, signature = token.split(".")
        if json.loads(_unpadded(head)).get("alg") != "RS256":
            return None
        if not crypt.RSAVerifier.from_string(app.public_key).verify(f"{head}.{payload}".encode(), _unpadded(signature)):
            return None
        claims = json.loads(_unpadded(payload))
    except ValueError:  # not three parts, not base64, not JSON, not a key
        return None
    return claims if isinstance(claims, dict) else None


def _unpadded(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
