"""Where a running embedded stack is: its state file's URLs, and its webhook secret file."""

from __future__ import annotations

import json
from pathlib import Path

from relaunch.settings import Settings


def running_url(settings: Settings, name: str) -> str:
    """The URL of `name` on the stack running in the settings' home; exits with a clear message when there is none."""
    state = settings.home / "stack.json"
    if not state.exists():
        raise SystemExit(f"relaunch: no running stack in {settings.home} (start one with `relaunch up`)")
    url = json.loads(state.read_text()).get("urls", {}).get(name)
    if not url:
        raise SystemExit(f"relaunch: the stack in {settings.home} runs no {name} (restart it with `relaunch up`)")
    return str(url)


def secret_file(settings: Settings) -> Path:
    """The embedded stack's GitHub webhook secret (a 0600 file in its secrets folder)."""
    return settings.secrets_dir / "github_webhook_secret"
