"""IAP's signed header on the dashboard: a verified identity may read, anything doubtful is nobody, nobody may act.

Tokens are signed here with a fresh ES256 key standing in for IAP's (google-auth signs them, as IAP would); the keys
come from an in-memory source, never the network.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import flask
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.auth import crypt, jwt
from pydantic import SecretStr

from relaunch.bootstrap import App
from relaunch.dashboard import iap
from relaunch.dashboard.web import Dashboard
from relaunch.settings import Settings

AUDIENCE = "/projects/123456789012/locations/us-central1/services/relaunch-dashboard"
TOKEN = "admin-token-for-iap-tests-0123456789"


def key_pair() -> tuple[str, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode(), public.decode()


GOOGLE_PRIVATE, GOOGLE_PUBLIC = key_pair()
OTHER_PRIVATE, _ = key_pair()


def signed(private: str = GOOGLE_PRIVATE, kid: str = "k1", **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": iap.ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600, "email": "ana@example.com",
               "sub": "accounts.google.com:1"} | claims  # fmt: skip
    return jwt.encode(crypt.ES256Signer.from_string(private, kid), payload).decode()


class Keys:
    def __init__(self) -> None:
        self.fetches = 0

    def __call__(self) -> dict[str, str]:
        self.fetches += 1
        return {"k1": GOOGLE_PUBLIC}


@pytest.fixture
def keys() -> iap.KeyCache:
    return iap.KeyCache(Keys())


def who(token: str, keys: iap.KeyCache, audience: str | None = AUDIENCE) -> str | None:
    return iap.identity({iap.HEADER: token}, audience, keys=keys)


def test_a_token_iap_signed_for_this_service_names_its_person(keys: iap.KeyCache) -> None:
    assert who(signed(), keys) == "ana@example.com"


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        signed(aud="/projects/123456789012/locations/us-central1/services/other"),  # another service's
        signed(iss="https://accounts.google.com"),  # not IAP's
        signed(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),  # expired
        signed(OTHER_PRIVATE),  # signed by someone else under IAP's key id
        signed(kid="k2"),  # a key Google does not publish
        signed(email=""),
        signed(email="ana@example.com\nX-Admin: yes"),
        b64({"alg": "none", "kid": "k1"}) + "." + b64({"iss": iap.ISSUER, "aud": AUDIENCE, "email": "a@b.c"}) + ".",
        b64({"alg": "HS256", "kid": "k1"}) + "." + signed().split(".", 1)[1],
        "not a jwt",
        "",
        "a" * (iap.MAX_TOKEN + 1),
    ],
    # Named: the tokens carry the time and a random ECDSA nonce, and xdist's workers must collect the same ids.
    ids=[
        "another-service",
        "not-iap",
        "expired",
        "forged-signature",
        "unknown-key",
        "no-email",
        "email-with-newline",
        "alg-none",
        "alg-hs256",
        "not-a-jwt",
        "empty",
        "too-long",
    ],
)
def test_anything_doubtful_is_nobody(token: str, keys: iap.KeyCache) -> None:
    assert who(token, keys) is None


def test_without_an_audience_no_header_is_read_and_no_key_is_fetched() -> None:
    source = Keys()
    assert who(signed(), iap.KeyCache(source), audience=None) is None and source.fetches == 0


def test_keys_are_fetched_once_per_hour_and_unreachable_keys_recognise_nobody() -> None:
    source = Keys()
    cache = iap.KeyCache(source)
    now = [1000.0]
    for _ in range(3):
        assert iap.identity({iap.HEADER: signed()}, AUDIENCE, keys=cache, clock=lambda: now[0]) == "ana@example.com"
    now[0] += iap.KEYS_TTL_S
    iap.identity({iap.HEADER: signed()}, AUDIENCE, keys=cache, clock=lambda: now[0])
    assert source.fetches == 2

    def unreachable() -> dict[str, str]:
        raise OSError("network is unreachable")

    assert who(signed(), iap.KeyCache(unreachable)) is None


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> flask.testing.FlaskClient:
    monkeypatch.setattr(iap, "GOOGLE_KEYS", iap.KeyCache(Keys()))
    settings = Settings(home=tmp_path, dashboard_token=SecretStr(TOKEN), iap_audience=AUDIENCE)  # type: ignore[call-arg]
    app = App(settings)
    web = flask.Flask(__name__)
    web.add_url_rule("/<path:path>", "all", lambda path: Dashboard(app).respond(flask.request), methods=["GET", "POST"])
    test_client = web.test_client()
    test_client.environ_base["REMOTE_ADDR"] = "203.0.113.9"  # not loopback: reads are not open
    return test_client


def test_behind_iap_a_verified_person_reads_but_cannot_act(client: flask.testing.FlaskClient) -> None:
    assert client.get("/runs").status_code == 401  # no header, no token
    assert client.get("/runs", headers={iap.HEADER: signed(OTHER_PRIVATE)}).status_code == 401
    assert client.get("/runs", headers={iap.HEADER: signed()}).status_code == 200
    acted = client.post("/actions/rollback", headers={iap.HEADER: signed()}, data={"pipeline": "digits", "env": "x"})
    assert acted.status_code == 401 and acted.get_json()["field"] == "token"
