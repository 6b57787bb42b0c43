"""Wake-up sockets are best-effort: a missing, stale, or unbindable socket never raises, and polling goes on."""

from __future__ import annotations

import logging
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from relaunch.adapters.local import wake


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder whose paths fit AF_UNIX's ~108 bytes wherever pytest puts its tmp_path."""
    with tempfile.TemporaryDirectory(prefix="wk", dir="/tmp") as name:
        yield Path(name)


def readable(sock: wake.WakeSocket, timeout: float = 0.5) -> bool:
    return bool(select.select([sock.fileno()], [], [], timeout)[0])


def test_a_nudge_wakes_the_bound_socket_and_a_drain_answers_all(short_dir: Path) -> None:
    sock = wake.WakeSocket.bind(short_dir / "agent.wake")
    assert sock is not None
    assert os.stat(sock.path).st_mode & 0o777 == 0o600
    for _ in range(3):
        wake.nudge(sock.path)
    assert readable(sock)
    sock.drain()
    assert not readable(sock, 0.05)
    sock.close()
    assert not sock.path.exists()


def test_a_nudge_to_nobody_is_silent(short_dir: Path) -> None:
    wake.nudge(short_dir / "missing.wake")  # no file
    stale = wake.WakeSocket.bind(short_dir / "stale.wake")
    assert stale is not None
    stale._sock.close()  # the file stays, nobody reads it: ECONNREFUSED
    wake.nudge(stale.path)
    wake.nudge(Path("/tmp/" + "x" * 200))  # too long for AF_UNIX


def test_a_full_buffer_never_blocks_the_sender(short_dir: Path) -> None:
    sock = wake.WakeSocket.bind(short_dir / "full.wake")
    assert sock is not None
    start = time.monotonic()
    for _ in range(5000):
        wake.nudge(sock.path)
    assert time.monotonic() - start < 5
    sock.close()


def test_binding_replaces_a_stale_file_and_closing_spares_a_newer_socket(short_dir: Path) -> None:
    first = wake.WakeSocket.bind(short_dir / "agent.wake")
    second = wake.WakeSocket.bind(short_dir / "agent.wake")  # what a restart after a SIGKILL does
    assert first is not None and second is not None
    first.close()  # the old process ending late must not take the new one's socket away
    wake.nudge(second.path)
    assert readable(second)
    second.close()


def test_an_unbindable_path_falls_back_to_polling_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert wake.WakeSocket.bind(Path("/tmp/" + "y" * 200 + ".wake")) is None
    assert "polling instead" in caplog.text


def test_a_pidfd_is_readable_once_its_process_exits() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)"])
    fd = wake.pidfd_of(proc.pid)
    if fd is None:
        proc.wait()
        pytest.skip("no pidfd_open here")
    try:
        assert not select.select([fd], [], [], 0)[0]
        assert select.select([fd], [], [], 5)[0] == [fd]
    finally:
        os.close(fd)
        proc.wait()


def test_wait_sleeps_when_there_is_nothing_to_watch() -> None:
    slept: list[float] = []
    wake.wait([], 0.25, slept.append)
    assert slept == [0.25]
