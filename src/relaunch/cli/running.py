"""Where a running embedded stack is: its state file's URLs, and its webhook secret file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from relaunch.settings import Settings


def running_url(settings: Settings, name: str) -> str:
    """The URL of `name` on the stack running in the settings' home; exits (1) with one line when there is none."""
    state = settings.home / "stack.json"
    if not state.exists():
        raise SystemExit(f"relaunch: no running stack in {settings.home} (start one with `relaunch up`)")
    written = _read_state(state)
    pid = written.get("pid")
    if isinstance(pid, int) and not _alive(pid):  # what kill -9 of `relaunch up` leaves behind
        raise SystemExit(
            f"relaunch: the stack in {settings.home} is not running (its stack.json names pid {pid}, which has "
            "exited): start one with `relaunch up`"
        )
    urls = written.get("urls")
    url = urls.get(name) if isinstance(urls, dict) else None
    if not url:
        raise SystemExit(f"relaunch: the stack in {settings.home} runs no {name} (restart it with `relaunch up`)")
    return str(url)


def _read_state(state: Path) -> dict[str, Any]:
    try:
        written = json.loads(state.read_text())
    except (OSError, ValueError):
        written = None
    if not isinstance(written, dict):
        raise SystemExit(f"relaunch: {state} is unreadable: restart the stack with `relaunch up`")
    return written


def _alive(pid: int) -> bool:
    """Whether a process `pid` exists (one of another user's counts: only its owner could say more)."""
    if pid <= 0:  # 0 and negatives name process groups, never a stack
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def secret_file(settings: Settings) -> Path:
    """The embedded stack's GitHub webhook secret (a 0600 file in its secrets folder)."""
    return settings.secrets_dir / "github_webhook_secret"
