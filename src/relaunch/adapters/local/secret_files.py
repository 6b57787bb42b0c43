"""The embedded stack's secrets as files: one per secret, mode 0600, in a folder of mode 0700."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) and make it 0700: only its owner may list or enter it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def read_secret(path: Path) -> str | None:
    """The secret stored at `path`, or None when the file is absent or empty."""
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return value or None


def ensure_secret(path: Path) -> str:
    """The secret at `path`, creating a random one first (0600, atomically, first writer wins) if there is none."""
    existing = read_secret(path)
    if existing is not None:
        return existing
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
    try:
        os.link(tmp, path)  # atomic, and refuses to replace a secret someone already uses
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    value = read_secret(path)
    if value is None:
        raise OSError(f"{path}: the secret file is empty")
    return value


def write_secret(path: Path, value: str) -> None:
    """Store `value` at `path` (0600, replaced atomically), e.g. a secret handed over through the environment."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    os.replace(tmp, path)
