"""The embedded stack's state folder: private to its user, its own secrets in a folder of their own, one owner."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import SecretStr

from relaunch.adapters.local.secret_files import ensure_secret, private_dir, read_secret, write_secret
from relaunch.settings import Settings, reveal

# The stack's own secrets, made once in its secrets folder (0600 in 0700) when none is configured.
GENERATED_SECRETS = ("github_webhook_secret", "wandb_webhook_token", "dashboard_token")


def with_local_secrets(settings: Settings) -> Settings:
    """Fill each webhook secret (and the dashboard's token) left unset from the stack's own file in its secrets
    folder (made once, 0600)."""
    update: dict[str, SecretStr] = {}
    for name in GENERATED_SECRETS:
        if name == "wandb_webhook_token" and reveal(settings.wandb_webhook_secret):
            continue  # a configured signing secret is W&B authentication enough
        if reveal(getattr(settings, name)):
            continue
        path = settings.secrets_dir / name
        _migrate(settings.home / name, path)
        update[name] = SecretStr(ensure_secret(path))
    return settings.model_copy(update=update) if update else settings


def _migrate(old: Path, new: Path) -> None:
    """Move a secret from where older versions kept it (directly in the home, above every job's workspace)."""
    value = read_secret(old)
    if value is not None and read_secret(new) is None:
        write_secret(new, value)
    old.unlink(missing_ok=True)


def make_private(home: Path) -> None:
    """Close a home made before the umask (0755 folders, 0644 files) to other users: itself and what it holds."""
    private_dir(home)
    for entry in home.iterdir():
        if not entry.is_symlink():
            entry.chmod(0o700 if entry.is_dir() else 0o600)


class StackAlreadyRunning(RuntimeError):
    """Another live stack owns this state folder (two agents on one queue would run jobs twice)."""


def owner_pid(path: Path) -> int | None:
    """The pid a stack.json names, or None when it is absent or unreadable."""
    try:
        return int(json.loads(path.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def refuse_second_stack(home: Path) -> None:
    """Raise StackAlreadyRunning when a live stack other than this process owns `home`."""
    pid = owner_pid(home / "stack.json")
    if pid is None or pid == os.getpid():
        return
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return  # stale: the stack that wrote it is gone
    except PermissionError:
        pass
    raise StackAlreadyRunning(
        f"a relaunch stack (pid {pid}) already runs on {home}; stop it or use another RELAUNCH_HOME"
    )
