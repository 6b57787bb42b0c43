"""Settings read RELAUNCH_* variables as pydantic-settings read them, without importing it (relaunch.settings_env)."""

from __future__ import annotations

import types
import typing
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from relaunch import settings as settings_module
from relaunch.settings import Settings, secret_values
from relaunch.settings_env import environment_values, merged

SCALARS = (str, int, float, bool, Path, SecretStr, type(None))


def test_a_variable_names_its_field_in_any_case_and_other_variables_are_ignored() -> None:
    environ = {"RELAUNCH_HOME": "/h", "relaunch_gcp_project": "p", "RELAUNCH_NOT_A_FIELD": "x", "HOME": "/root"}
    assert environment_values(["home", "gcp_project", "profile"], environ) == {"home": "/h", "gcp_project": "p"}


def test_what_is_given_wins_over_the_environment_which_wins_over_handed_secrets() -> None:
    values = merged({"a": 1}, {"a": "env", "b": "env"}, {"a": "h", "b": "h", "c": "h"})
    assert values == {"a": 1, "b": "env", "c": "h"}


def test_settings_parse_their_variables_and_a_value_given_in_code_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAUNCH_MAX_CONCURRENT_JOBS", "3")
    monkeypatch.setenv("Relaunch_Insecure_Dev_Mode", "true")
    monkeypatch.setenv("RELAUNCH_RECONCILE_INTERVAL_S", "2.5")
    monkeypatch.setenv("RELAUNCH_HOME", "/from/env")
    monkeypatch.setenv("RELAUNCH_GITHUB_TOKEN", "tok-secret")
    settings = Settings(home=Path("/given"))
    assert (settings.max_concurrent_jobs, settings.insecure_dev_mode, settings.reconcile_interval_s) == (3, True, 2.5)
    assert settings.home == Path("/given")
    assert secret_values(settings) == {"github_token": "tok-secret"} and "tok-secret" not in repr(settings)


def test_an_empty_or_wrong_variable_is_refused_naming_its_field_without_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RELAUNCH_PORT_BASE", "")
    monkeypatch.setenv("RELAUNCH_PROFILE", "cloudy")
    with pytest.raises(ValidationError) as error:
        Settings()
    fields = {error["loc"] for error in error.value.errors()}
    assert fields == {("port_base",), ("profile",)}
    assert "cloudy" not in str(error.value)  # hide_input_in_errors: an input may be a secret


def test_defaults_are_validated_as_values_are() -> None:
    assert isinstance(Settings().home, Path) and Settings().adapter("store") == "sqlite"


def test_handed_secrets_stand_in_for_their_variables_only(monkeypatch: pytest.MonkeyPatch) -> None:
    handed = {"github_webhook_secret": "handed", "home": "/not/a/secret"}
    monkeypatch.setattr(settings_module, "take_handed_secrets", lambda: dict(handed))
    monkeypatch.delenv("RELAUNCH_GITHUB_WEBHOOK_SECRET", raising=False)
    settings = Settings()
    assert settings.webhook_secret() == "handed" and settings.home != Path("/not/a/secret")
    monkeypatch.setenv("RELAUNCH_GITHUB_WEBHOOK_SECRET", "from-env")
    assert Settings().webhook_secret() == "from-env"


def test_every_field_is_a_scalar_its_variable_can_hold_as_text() -> None:
    """environment_values passes each variable on as text; a list, dict or model field would need JSON decoding."""
    for name, info in Settings.model_fields.items():
        annotation = info.annotation
        union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
        members = typing.get_args(annotation) if union else (annotation,)
        for member in members:
            literal = typing.get_origin(member) is typing.Literal
            assert literal or member in SCALARS, f"{name}: {member} is no scalar; read its variable as JSON"
