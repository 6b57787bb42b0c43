"""Which port each server of the embedded stack listens on: fixed ones survive a restart (a tunnel, a real webhook).

`plan` is pure: RELAUNCH_PORT_<NAME> wins, else RELAUNCH_PORT_BASE + the server's place in PORT_ORDER (a subset of the
functions keeps the numbers of the whole stack), else 0 (the OS picks a free port at each start). `claim` checks a
fixed port before anything listens on it: a port held by another program would otherwise make a function exit with a
traceback in its log, or worse, answer the stack's readiness probe in the function's place.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path

from relaunch.settings import PORT_ORDER, Settings

ENDPOINT = "endpoint"
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LINUX_EPHEMERAL_RANGE = (32768, 60999)  # Linux's default, where the file cannot be read


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now on `host` for a server about to bind it, below the kernel's ephemeral range if it can.

    The kernel's own pick (binding port 0) lies in the ephemeral range, which every outgoing connection's local port
    also comes from: any connection opened between the pick and the server's bind may take it (CI saw a function's
    port lost that way). Below the range only a program binding that very port can. Where no port there is free,
    the kernel picks.
    """
    low, _high = ephemeral_range()
    for port in _candidates(low):
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:  # in use, or not ours to bind
                continue
            return port
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (net.ipv4.ip_local_port_range)."""
    try:
        low, high = (int(part) for part in EPHEMERAL_RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return LINUX_EPHEMERAL_RANGE
    return low, high


def _candidates(low: int) -> Iterator[int]:
    """Up to 64 random ports from the upper half of those below `low` (and above the privileged ones)."""
    start = max(1024, low // 2)
    return iter(random.sample(range(start, low), k=min(64, max(0, low - start))))


class PortTaken(RuntimeError):
    """A fixed port cannot be used: another program listens on it, or two servers were given the same one."""


def plan(settings: Settings, servers: Iterable[str]) -> dict[str, int]:
    """Each server's port (0: any free one); PortTaken when two servers were given the same port."""
    ports: dict[str, int] = {}
    for name in servers:
        fixed = getattr(settings, f"port_{name}")
        if fixed is None and settings.port_base is not None:
            fixed = settings.port_base + PORT_ORDER.index(name)
        ports[name] = fixed or 0
    seen: dict[int, str] = {}
    for name, port in ports.items():
        if port and port in seen:
            raise PortTaken(f"port {port} is given to both {seen[port]} and {name}: {hint(name)}")
        seen[port] = name
    return ports


def hint(name: str) -> str:
    """What a user sets to move `name` elsewhere."""
    return f"set RELAUNCH_PORT_{name.upper()} or another --port-base (RELAUNCH_PORT_BASE)"


def claim(host: str, port: int, name: str) -> None:
    """PortTaken, naming the port and the server, when something already listens on `port` of `host`."""
    if not port:
        return
    with socket.socket() as sock:
        # As the servers themselves bind: a port left in TIME_WAIT by the last stop is free, a listening one is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise PortTaken(f"port {port} for {name} on {host} is taken ({exc.strerror}): {hint(name)}") from None
