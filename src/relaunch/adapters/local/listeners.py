"""Which process listens on a loopback port, from /proc: a free port picked for a function can be taken by another
program before the function binds it, and a readiness probe that only connects would then be answered by that
program (another stack's function, in a busy test run) in the function's place."""

from __future__ import annotations

import os
from pathlib import Path

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column


def listening_inodes(port: int, proc: Path = Path("/proc")) -> set[str]:
    """The socket inodes listening on `port` (IPv4 and IPv6)."""
    found = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(fields[9])
    return found


def holds_listener(pid: int, port: int, proc: Path = Path("/proc")) -> bool:
    """Whether process `pid` or one of its descendants holds a socket listening on `port`."""
    inodes = {f"socket:[{inode}]" for inode in listening_inodes(port, proc)}
    if not inodes:
        return False
    for member in _tree(pid, proc):
        try:
            fds = os.listdir(proc / str(member) / "fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(proc / str(member) / "fd" / fd) in inodes:
                    return True
            except OSError:
                continue
    return False


def _tree(root: int, proc: Path) -> list[int]:
    """`root` and its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree
