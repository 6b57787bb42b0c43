"""Secrets handed to a child process in memory (relaunch.handoff): never in its environment, read once, closed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from relaunch import handoff
from relaunch.handoff import SECRETS_FD_VARIABLE, hand_over, take_handed_secrets

CHILD = """
import json, os, sys
from relaunch.settings import Settings
settings = Settings()
fd = int(sys.argv[1])
try:
    os.fstat(fd)
    closed = False
except OSError:
    closed = True
print(json.dumps({
    "token": settings.github_token.get_secret_value() if settings.github_token else None,
    "slack": settings.slack_webhook_url.get_secret_value() if settings.slack_webhook_url else None,
    "environ": open("/proc/self/environ", "rb").read().decode("latin-1"),
    "variable_left": os.environ.get("RELAUNCH_SECRETS_FD"),
    "closed": closed,
}))
"""


def run_child(values: dict[str, str], **env: str) -> dict[str, object]:
    fd = hand_over(values)
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(fd)],
            env={**os.environ, **env, SECRETS_FD_VARIABLE: str(fd)},
            pass_fds=(fd,),
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
    finally:
        os.close(fd)
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_a_child_gets_its_secrets_as_settings_but_not_in_its_environment() -> None:
    token = "ghp_" + "9" * 30 + "\udcff"  # a lone surrogate travels too
    seen = run_child({"github_token": token, "slack_webhook_url": "https://hooks.example/x", "unknown": "ignored"})
    assert seen["token"] == token and seen["slack"] == "https://hooks.example/x"
    assert "9" * 30 not in str(seen["environ"]) and "hooks.example" not in str(seen["environ"])
    assert seen["closed"] is True and seen["variable_left"] is None


def test_the_environment_still_wins_over_handed_secrets() -> None:
    seen = run_child({"github_token": "handed"}, RELAUNCH_GITHUB_TOKEN="from-env")
    assert seen["token"] == "from-env"


@pytest.mark.parametrize("raw", ["not-a-number", "987654"])
def test_a_bad_descriptor_is_an_error_naming_the_variable(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handoff, "_taken", None)
    monkeypatch.setenv(SECRETS_FD_VARIABLE, raw)
    with pytest.raises(ValueError, match=SECRETS_FD_VARIABLE):
        take_handed_secrets()


def test_a_descriptor_holding_something_else_is_an_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    fd = hand_over({})
    os.pwrite(fd, b'["not", "an object"]', 0)
    monkeypatch.setattr(handoff, "_taken", None)
    monkeypatch.setenv(SECRETS_FD_VARIABLE, str(fd))
    with pytest.raises(ValueError, match=f"{SECRETS_FD_VARIABLE}: the handed secrets are not a JSON object"):
        take_handed_secrets()
    with pytest.raises(OSError):
        os.fstat(fd)  # closed even so


def test_reexec_hands_the_secrets_over_to_the_command_it_runs_again(tmp_path: object) -> None:
    """The e2e job isolation test shows the re-executed `relaunch up` has them no more in /proc/<pid>/environ."""
    code = (
        "import sys; from relaunch.handoff import reexec_without_secrets;"
        "reexec_without_secrets(['github_token'], ['doctor'])"
    )
    env = {**os.environ, "RELAUNCH_GITHUB_TOKEN": "ghp_reexec_" + "7" * 20, "RELAUNCH_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert "github notifier    token configured" in done.stdout and "7" * 20 not in done.stdout + done.stderr


def test_reexec_does_nothing_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAUNCH_GITHUB_TOKEN", "stays")
    handoff.reexec_without_secrets(["github_token"], None)  # a test calling the CLI in-process is never replaced
    assert os.environ["RELAUNCH_GITHUB_TOKEN"] == "stays"
