"""Wake-ups between the local agent's processes: a byte on a Unix datagram socket, a job's exit on its pidfd.

A wake-up only cuts a wait short; every waiter still polls on its interval, so a lost one costs at most an interval.
The agent binds `<agent db>.wake` (a submit, from any process, wakes it), the stack's completion relay binds
`<agent db>.done` (the agent wakes it when it records a job's end) and the bus dispatcher `<bus db>.wake` (a publish
or an outbox commit, from any process, wakes it). Both lie beside the database in RELAUNCH_HOME,
which is 0700 and which the job sandbox hides from jobs. A job run without the sandbox could send to them, but a
byte carries nothing: whatever arrives, the receiver only does, earlier, the idempotent round it does on every poll.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


def wake_path(db_path: Path) -> Path:
    """The socket that wakes whoever serves the database at `db_path`: the agent of a job table (a job was
    submitted), the dispatcher of a bus (a message was committed), from any process."""
    return Path(db_path).with_suffix(".wake")


def relay_wake_path(db_path: Path) -> Path:
    """The socket that wakes the completion relay of the job table at `db_path` (a job's end was recorded)."""
    return Path(db_path).with_suffix(".done")


def nudge(path: Path) -> None:
    """Send one byte to the socket at `path`; best-effort and never blocking (nobody bound, a full buffer: ignored)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.sendto(b"!", str(path))
    except OSError:  # no socket, ECONNREFUSED (a stale one), EAGAIN, a path too long for AF_UNIX: the poll covers it
        pass


class WakeSocket:
    """A bound datagram socket whose readability means "look now"; `bind` gives None where it cannot be had."""

    def __init__(self, sock: socket.socket, path: Path, inode: int) -> None:
        self._sock, self.path, self._inode = sock, path, inode

    @classmethod
    def bind(cls, path: Path) -> WakeSocket | None:
        """Bind at `path`, replacing a stale file a killed process left; None (and a warning) if that fails."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            sock.bind(str(path))
            os.chmod(path, 0o600)
            inode = os.stat(path).st_ino
        except OSError as exc:
            sock.close()
            log.warning("cannot bind the wake-up socket %s (%s); polling instead", path, exc)
            return None
        sock.setblocking(False)
        return cls(sock, path, inode)

    def fileno(self) -> int:
        return self._sock.fileno()

    def drain(self) -> None:
        """Read every pending byte: one round answers them all."""
        try:
            while self._sock.recv(64):
                pass
        except OSError:  # BlockingIOError: nothing left
            pass

    def close(self) -> None:
        """Close and remove the socket file (unless another process has bound its own there since)."""
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)
        self._sock.close()


def pidfd_of(pid: int) -> int | None:
    """A file descriptor readable once process `pid` exits; None where Linux (< 5.3) or Python cannot give one."""
    opener: Callable[[int], int] | None = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return opener(pid)
    except OSError:
        return None


def wait(fds: list[int], timeout: float, sleep: Callable[[float], object]) -> None:
    """Return once any of `fds` is readable or `timeout` passed; `sleep(timeout)` when there is nothing to watch."""
    if not fds:
        sleep(timeout)
        return
    try:
        select.select(fds, [], [], timeout)
    except (OSError, ValueError):  # a descriptor closed under us: wait the plain way this once
        sleep(timeout)
