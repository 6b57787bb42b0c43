"""Secrets handed from one relaunch process to the next in memory, never through an environment.

A process's environment is readable for its whole life (/proc/<pid>/environ, fixed at exec) by anything running as
its user, a training job included. So `relaunch up` moves the secrets configured in its environment into an anonymous
in-memory file, re-executes itself without them, and hands each function process its secrets the same way: the file
descriptor's number is in RELAUNCH_SECRETS_FD, the receiver reads it once at start and closes it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping

SECRETS_FD_VARIABLE = "RELAUNCH_SECRETS_FD"
# Set by the embedded stack for each function it starts: the path of its warm-up request (adapters/local/stack_warm.py).
WARM_UP_PATH_VARIABLE = "RELAUNCH_WARM_UP_PATH"

_taken: dict[str, str] | None = None
_lock = threading.Lock()


def hand_over(values: Mapping[str, str]) -> int:
    """A new file descriptor (close-on-exec until passed on) whose content is `values`; the caller closes it."""
    data = json.dumps(dict(values)).encode("ascii")  # ensure_ascii: a lone surrogate travels as an escape
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("relaunch-secrets", os.MFD_CLOEXEC)  # never on disk
    else:
        with tempfile.TemporaryFile() as unnamed:  # already unlinked: no name anyone could open
            fd = os.dup(unnamed.fileno())
    os.write(fd, data)
    return fd


def take_handed_secrets() -> dict[str, str]:
    """The secrets handed to this process (field name -> value), read once; the descriptor is closed after."""
    global _taken
    with _lock:
        if _taken is None:
            raw = os.environ.pop(SECRETS_FD_VARIABLE, None)
            _taken = _read(raw) if raw else {}
        return dict(_taken)


def _read(raw: str) -> dict[str, str]:
    try:
        fd = int(raw)
    except ValueError:
        raise ValueError(f"{SECRETS_FD_VARIABLE}: not a file descriptor number") from None
    try:
        data = os.pread(fd, os.fstat(fd).st_size, 0)
    except OSError as exc:
        raise ValueError(f"{SECRETS_FD_VARIABLE}: cannot read descriptor {fd}: {exc.strerror}") from None
    finally:
        _close(fd)
    try:
        values = json.loads(data)
    except ValueError:
        values = None
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise ValueError(f"{SECRETS_FD_VARIABLE}: the handed secrets are not a JSON object of strings")
    return values


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def reexec_without_secrets(fields: Iterable[str], argv: list[str] | None) -> None:
    """Exec `python -m relaunch.cli *argv` with the secret `fields` moved from the environment into memory."""
    # Returns without doing anything when no such variable is set, or when argv is None (called in-process: a test).
    if argv is None:
        return
    names = {f"relaunch_{field}" for field in fields}
    found = {key: value for key, value in os.environ.items() if key.lower() in names}
    if not found:
        return
    values = {**take_handed_secrets(), **{key.lower().removeprefix("relaunch_"): v for key, v in found.items()}}
    fd = hand_over(values)
    os.set_inheritable(fd, True)
    env = {key: value for key, value in os.environ.items() if key not in found}
    env[SECRETS_FD_VARIABLE] = str(fd)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "relaunch.cli", *argv], env)
