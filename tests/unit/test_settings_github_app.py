"""GitHub credentials in Settings: a token or a GitHub App installation, never both, never half an App."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from relaunch.settings import Settings

KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow-not-a-real-key-but-shaped-like-one\n-----END RSA PRIVATE KEY-----\n"
APP: dict[str, Any] = {"github_app_id": "123456", "github_app_private_key": KEY, "github_app_installation_id": 4242}


def refused(**values: Any) -> str:
    with pytest.raises(ValidationError) as error:
        Settings(**values)
    message = str(error.value)
    assert "MIIEow" not in message and "tok-secret" not in message  # no secret in an error a log may print
    return message


def test_an_app_alone_is_accepted_and_its_key_stays_hidden() -> None:
    settings = Settings(**APP)
    assert settings.github_app_installation_id == 4242
    assert "MIIEow" not in repr(settings)


def test_a_token_and_an_app_together_are_refused_naming_both() -> None:
    message = refused(github_token="tok-secret", **APP)
    assert "RELAUNCH_GITHUB_TOKEN" in message and "RELAUNCH_GITHUB_APP_PRIVATE_KEY" in message


@pytest.mark.parametrize("missing", sorted(APP))
def test_half_an_app_is_refused_naming_what_is_missing(missing: str) -> None:
    message = refused(**{k: v for k, v in APP.items() if k != missing})
    assert f"RELAUNCH_{missing.upper()}" in message


@pytest.mark.parametrize("key", ["ghp_notakey", "MIIEow-base64-without-armour", "-----BEGIN PUBLIC KEY-----\nMIIEow\n"])
def test_a_private_key_that_is_no_pem_private_key_is_refused(key: str) -> None:
    message = refused(**{**APP, "github_app_private_key": key})
    assert "RELAUNCH_GITHUB_APP_PRIVATE_KEY" in message and "PEM" in message


@pytest.mark.parametrize(("field", "value"), [("github_app_id", "12a"), ("github_app_installation_id", 0)])
def test_ids_that_github_never_issues_are_refused(field: str, value: Any) -> None:
    refused(**{**APP, field: value})


def test_the_builds_key_secret_needs_the_app_it_belongs_to() -> None:
    message = refused(build_github_app_key_secret="relaunch-github-app-key")
    assert "RELAUNCH_BUILD_GITHUB_APP_KEY_SECRET" in message and "RELAUNCH_GITHUB_APP_ID" in message
    settings = Settings(**APP, build_github_app_key_secret="relaunch-github-app-key")
    assert settings.build_github_app_key_secret == "relaunch-github-app-key"
