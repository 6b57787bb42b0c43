"""Settings cross into a child process through one function, derived from the model: all of them, secrets never."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from relaunch.settings import Settings, child_environment, secret_fields


def test_every_setting_chosen_in_code_reaches_the_child_as_the_same_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = Settings(
        home=tmp_path / "home",
        pipelines_dir=tmp_path / "pipelines",
        bus="pubsub",
        gcp_project="p",
        insecure_dev_mode=True,
        reconcile_interval_s=0.25,
        max_body_bytes=1234,
        public_url="https://runs.example",
    )
    env = child_environment(parent, {"PATH": "/bin", "RELAUNCH_TRAINING": "vertex"})
    assert env["PATH"] == "/bin" and "RELAUNCH_TRAINING" not in env  # a setting the parent has not: not inherited
    monkeypatch.setattr(os, "environ", env)
    secrets = set(secret_fields())
    assert Settings().model_dump(exclude=secrets) == parent.model_dump(exclude=secrets)


def test_a_relative_path_reaches_the_child_absolute() -> None:
    env = child_environment(Settings(pipelines_dir=Path("pipelines")), {})
    assert env["RELAUNCH_PIPELINES_DIR"] == str(Path("pipelines").resolve())  # a child may start elsewhere


def test_no_secret_lands_in_a_childs_environment_whatever_its_case() -> None:
    parent = Settings(github_token=SecretStr("ghp_in_code"), slack_webhook_url=SecretStr("https://hooks.example/x"))
    inherited = {"RELAUNCH_WANDB_API_KEY": "from-env", "relaunch_github_webhook_secret": "lower", "HOME": "/home/u"}
    env = child_environment(parent, inherited)
    assert env == {**{k: v for k, v in env.items() if k.startswith("RELAUNCH_")}, "HOME": "/home/u"}
    found = " ".join(f"{key}={value}" for key, value in env.items())
    assert not any(secret in found for secret in ("ghp_in_code", "hooks.example", "from-env", "lower"))
    assert not {f"RELAUNCH_{name.upper()}" for name in secret_fields()} & set(env)
