"""free_port: a port for a server about to start, chosen where no other program is handed one meanwhile.

CI saw `relaunch up` fail with "function dashboard: port 48195 was taken by another program before it bound": the
kernel's pick for port 0 lies in its ephemeral range, the range every outgoing connection's local port comes from,
so any connection made between the pick and the server's bind could land on it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from relaunch.adapters.local import stack_ports
from relaunch.adapters.local.stack import free_port


def test_the_port_is_below_the_kernels_ephemeral_range_and_free() -> None:
    low, _high = stack_ports.ephemeral_range()
    for _ in range(20):
        port = free_port()
        assert 1024 <= port < low
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # free, as promised


def test_a_port_some_program_listens_on_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        spare = free_port()
        monkeypatch.setattr(stack_ports, "_candidates", lambda low: iter([taken, spare]))
        assert free_port() == spare


def test_with_no_room_below_the_range_the_kernel_picks(monkeypatch: pytest.MonkeyPatch) -> None:
    def nothing(low: int) -> Iterator[int]:
        return iter([])

    monkeypatch.setattr(stack_ports, "_candidates", nothing)
    assert free_port() > 0


@pytest.mark.parametrize(("text", "expected"), [("32768\t60999\n", (32768, 60999)), ("junk", (32768, 60999))])
def test_the_range_is_read_from_the_kernel_with_its_default_as_fallback(
    text: str, expected: tuple[int, int], tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ip_local_port_range"  # type: ignore[operator]
    path.write_text(text)
    monkeypatch.setattr(stack_ports, "EPHEMERAL_RANGE_FILE", path)
    assert stack_ports.ephemeral_range() == expected
