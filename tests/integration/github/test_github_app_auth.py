"""The GitHub adapters as a GitHub App installation: PyGithub's AppInstallationAuth against the local api.github.com.

The fake mints installation tokens only for a JWT signed with the app's key (checked with its public key), and
refuses a token once its `expires_at` has passed by the fake's clock. Time is moved by shifting that clock and
PyGithub's together (`later`), so a token minted to expire in a minute can be outlived without waiting.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from relaunch.adapters.github.client import GitHubApp
from relaunch.adapters.github.history import GitHubHistory
from relaunch.adapters.github.notifier import GitHubNotifier
from relaunch.adapters.github.permissions import GitHubPermissions
from relaunch.bootstrap import App
from relaunch.domain.model import Notification
from relaunch.settings import Settings
from tests.github_server import FakeApp, FakeGitHub, serve
from tests.integration.github.openapi import assert_conforms

github = pytest.importorskip("github", reason="PyGithub is not installed")
jwt = pytest.importorskip("jwt", reason="PyJWT is not installed")

APP_ID, INSTALLATION = "987654", 31337
SHA = "9f3c1d2e4b5a69788796a5b4c3d2e1f001234567"
REPO = "relaunch-demo/digits"
TOKENS = f"/app/installations/{INSTALLATION}/access_tokens"
STATUSES = f"/repos/{REPO}/statuses/{SHA}"


def rsa_pair() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private.decode(), public.decode()


PRIVATE, PUBLIC = rsa_pair()
KEY_BODY = PRIVATE.splitlines()[1]  # a line of the key's base64: what a leak would show


class Clock:
    """An offset added to now, for the fake and for PyGithub's expiry check alike."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()

    class Shifted(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.now(tz) + clock.offset

    monkeypatch.setattr(github.Auth, "datetime", Shifted)  # where AppInstallationAuth asks whether it expired
    return clock


@pytest.fixture
def fake(clock: Clock) -> Iterator[FakeGitHub]:
    app = FakeApp(APP_ID, PUBLIC, INSTALLATION, token_lifetime=timedelta(minutes=1))
    with serve("no-static-token", app) as server:
        server.now = clock.now
        yield server
        assert_conforms(server.requests)


def the_app(key: str = PRIVATE) -> GitHubApp:
    return GitHubApp(APP_ID, SecretStr(key), INSTALLATION)


def notifier(fake: FakeGitHub, app: GitHubApp | None = None) -> GitHubNotifier:
    return GitHubNotifier(app or the_app(), base_url=fake.url, seconds_between_writes=0, seconds_between_requests=0)


def note(**fields: Any) -> Notification:
    values: dict[str, Any] = {"run_id": "run-42", "pipeline": "digits", "repo": REPO, "sha": SHA}
    values.update(stage="gate", state="success", description="gate passed", ref="refs/heads/main")
    return Notification(**{**values, **fields})


def test_the_notifier_mints_an_installation_token_with_a_jwt_signed_by_the_apps_key(fake: FakeGitHub) -> None:
    notifier(fake).notify(note(report_markdown="## Gate\nPassed: accuracy 0.95 >= floor 0.90"))

    assert fake.calls() == [("POST", TOKENS), ("POST", STATUSES), ("POST", f"/repos/{REPO}/check-runs")]
    minting = fake.requests[0]
    token = minting.headers["authorization"].removeprefix("Bearer ")
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(token, PUBLIC, algorithms=["RS256"])  # signed with the configured key
    assert claims["iss"] == APP_ID
    assert claims["exp"] <= datetime.now(UTC).timestamp() + 600  # GitHub refuses a JWT living over ten minutes
    (minted,) = fake.issued
    assert [r.headers["authorization"] for r in fake.requests[1:]] == [f"token {minted}"] * 2
    assert fake.answered == [201, 201, 201]


def test_a_token_is_renewed_before_it_expires_never_after_a_401(fake: FakeGitHub, clock: Clock) -> None:
    sender = notifier(fake)
    sender.notify(note(stage="train", state="pending"))
    clock.offset = timedelta(seconds=30)  # 30 s left of the minute: still used
    sender.notify(note(stage="train", state="success"))
    clock.offset = timedelta(seconds=61)  # expired by the fake's clock: renewed first
    sender.notify(note(stage="evaluate", state="pending"))

    assert fake.calls() == [("POST", TOKENS), *[("POST", STATUSES)] * 2, ("POST", TOKENS), ("POST", STATUSES)]
    first, second = fake.issued
    used = [r.headers["authorization"] for r in fake.requests if r.path == STATUSES]
    assert used == [f"token {first}", f"token {first}", f"token {second}"]
    assert 401 not in fake.answered


def test_permissions_and_history_act_as_the_installation_too(fake: FakeGitHub) -> None:
    fake.permissions["octocat"] = "maintain"
    fake.history = [SHA, "0" * 40]

    assert GitHubPermissions(the_app(), base_url=fake.url).permission(REPO, "octocat") == "write"
    assert GitHubHistory(the_app(), base_url=fake.url).relation(REPO, None, SHA, "0" * 40) == "ahead"
    assert [method for method, path in fake.calls() if path == TOKENS] == ["POST", "POST"]
    assert 401 not in fake.answered


def test_the_composition_root_builds_every_github_adapter_as_the_app(fake: FakeGitHub, tmp_path: Any) -> None:
    settings = Settings(
        home=tmp_path / "home",
        github_api_url=fake.url,
        github_app_id=APP_ID,
        github_app_private_key=SecretStr(PRIVATE),
        github_app_installation_id=INSTALLATION,
    )
    fake.permissions["octocat"] = "admin"
    assert App(settings).permissions.permission(REPO, "octocat") == "admin"
    assert fake.calls()[0] == ("POST", TOKENS)


def test_the_private_key_is_never_logged_nor_shown(fake: FakeGitHub, caplog: pytest.LogCaptureFixture) -> None:
    other, _ = rsa_pair()  # a key GitHub does not know: the token is refused, the notification logged and dropped
    caplog.set_level(logging.DEBUG)
    app = the_app(other)
    sender = notifier(fake, app)
    sender.notify(note())

    assert fake.answered == [401]
    assert "not sent" in caplog.text and "HTTP 401" in caplog.text
    shown = caplog.text + repr(sender) + repr(app) + str(app)
    assert other.splitlines()[1] not in shown and KEY_BODY not in shown
    with pytest.raises(ValueError, match="HTTP 401"):
        GitHubPermissions(app, base_url=fake.url).permission(REPO, "octocat")
    assert other.splitlines()[1] not in caplog.text
