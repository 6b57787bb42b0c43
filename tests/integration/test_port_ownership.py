"""A function's readiness is its own listener, not any program's on its port: a free port picked for a function can
be taken before the function binds it (seen as a flaky rollout test when many stacks start at once)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from relaunch.adapters.local.listeners import holds_listener, listening_inodes
from relaunch.adapters.local.stack import FunctionProcess, PortLost, wait_for_port

BIND = (
    "import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); time.sleep(30)"
)


@pytest.fixture
def foreign() -> Iterator[int]:
    """A port another program (here: this test) listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_the_listener_is_found_by_its_process(foreign: int) -> None:
    assert listening_inodes(foreign)
    assert holds_listener(os.getpid(), foreign)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert not holds_listener(child.pid, foreign)  # connectable, but not its socket
    finally:
        child.kill()
        child.wait()


def test_a_function_that_lost_its_port_is_not_taken_for_ready(foreign: int) -> None:
    # It tries to bind the port another program holds, fails and exits, while a probe that only connects succeeds.
    proc = subprocess.Popen([sys.executable, "-c", BIND, str(foreign)], stderr=subprocess.DEVNULL)
    with pytest.raises(PortLost, match=f"port {foreign} was taken"):
        wait_for_port(FunctionProcess(name="orchestrator", port=foreign, process=proc), timeout=20)


def test_a_function_that_binds_its_port_is_ready() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    proc = subprocess.Popen([sys.executable, "-c", BIND, str(port)])
    try:
        wait_for_port(FunctionProcess(name="orchestrator", port=port, process=proc), timeout=20)
        assert holds_listener(proc.pid, port)
    finally:
        proc.kill()
        proc.wait()
