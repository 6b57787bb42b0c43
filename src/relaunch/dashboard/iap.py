"""Reading the dashboard as the person IAP let through: IAP's signed header, verified, never merely trusted.

Behind Identity-Aware Proxy each request carries `X-Goog-IAP-JWT-Assertion`, a JWT IAP signs (ES256) with keys Google
publishes at https://www.gstatic.com/iap/verify/public_key (IAP's "Securing your app with signed headers"). For IAP
on a Cloud Run service its audience is /projects/PROJECT_NUMBER/locations/REGION/services/SERVICE and its issuer
https://cloud.google.com/iap. Deploy sets that audience (RELAUNCH_IAP_AUDIENCE) only when it puts IAP in front of
the dashboard; without one no header is read, so anyone able to reach the page some other way gains nothing by
forging it. A verified identity may read; acting still needs the admin token.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

HEADER = "X-Goog-IAP-JWT-Assertion"
ISSUER = "https://cloud.google.com/iap"
KEYS_URL = "https://www.gstatic.com/iap/verify/public_key"
KEYS_TTL_S = 3600.0  # Google rotates these keys; an hour-old copy is what its samples' caches keep too
MAX_TOKEN = 8192

Keys = Mapping[str, str]  # key id -> PEM public key


def fetch_google_keys(timeout_s: float = 5.0) -> Keys:
    """IAP's current public keys, from Google."""
    with urllib.request.urlopen(KEYS_URL, timeout=timeout_s) as answer:  # noqa: S310 (a fixed https URL)
        keys = json.loads(answer.read(1_000_000))
    if not isinstance(keys, dict) or not all(isinstance(v, str) for v in keys.values()):
        raise ValueError(f"{KEYS_URL} did not answer a mapping of key ids to PEM keys")
    return keys


class KeyCache:
    """IAP's keys, fetched at most once per `ttl_s` per process (a dashboard object lives for one request)."""

    def __init__(self, fetch: Callable[[], Keys] = fetch_google_keys, ttl_s: float = KEYS_TTL_S) -> None:
        self._fetch, self._ttl_s = fetch, ttl_s
        self._keys: Keys = {}
        self._at = -ttl_s
        self._lock = threading.Lock()

    def get(self, now: float) -> Keys:
        with self._lock:
            if now - self._at >= self._ttl_s:
                self._keys, self._at = self._fetch(), now
            return self._keys


GOOGLE_KEYS = KeyCache()


def identity(
    headers: Mapping[str, str],
    audience: str | None,
    *,
    keys: KeyCache | None = None,
    clock: Callable[[], float] = time.time,
) -> str | None:
    """The email IAP vouches for in this request's signed header, or None: no audience, no header, or any doubt."""
    token = next((value for name, value in headers.items() if name.lower() == HEADER.lower()), "")
    if not audience or not token or len(token) > MAX_TOKEN:
        return None
    kid = _es256_key_id(token)
    if kid is None:
        return None
    try:
        known = (keys or GOOGLE_KEYS).get(clock())
    except (OSError, ValueError) as exc:  # fail closed: without Google's keys nobody is recognised
        log.warning("dashboard: IAP's public keys could not be fetched (%s): IAP identities not recognised", exc)
        return None
    if kid not in known:
        return None
    claims = _verified_claims(token, {kid: known[kid]}, audience)
    email = claims.get("email") if claims and claims.get("iss") == ISSUER else None
    return email if isinstance(email, str) and 0 < len(email) <= 320 and email.isprintable() else None


def _es256_key_id(token: str) -> str | None:
    """The key id of a token whose header names ES256 (IAP's only algorithm): no other algorithm is ever tried."""
    try:
        segment = token.split(".", 1)[0]
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict) or header.get("alg") != "ES256" or not isinstance(header.get("kid"), str):
        return None
    return str(header["kid"])


def _verified_claims(token: str, key: Keys, audience: str) -> dict[str, Any] | None:
    """The claims when the signature, the expiry and the audience all hold (google-auth's JWT checks)."""
    from google.auth import exceptions, jwt  # noqa: PLC0415 (only behind IAP: other processes never load it)

    try:
        claims = jwt.decode(token, certs=key, audience=audience)
    except (ValueError, TypeError, exceptions.GoogleAuthError):
        return None
    return claims if isinstance(claims, dict) else None
