"""Supervises one job (`python -I job_supervisor.py AGENT_PID GRACE_S -- COMMAND...`): nothing it starts outlives it.

Standard library only, like sandbox_run.py (it runs in the job's environment). A process group is not enough: a shell's
background child is orphaned when the shell ends, and a daemon calls setsid and leaves the group. This process is a
child subreaper (PR_SET_CHILD_SUBREAPER), so every orphan of the job is re-parented here instead of to init, and it
can find all of them in /proc. It ends them all:
- when the job ends (what a job leaves running is a leak, as on Vertex, where the container goes with it);
- on SIGTERM, SIGINT or SIGHUP (the agent's cancel, timeout or stop): SIGTERM to every one, SIGKILL after GRACE_S;
- when the agent dies, even by SIGKILL: Linux sends this process SIGTERM then (PR_SET_PDEATHSIG), so the fix holds
  without waiting for a restart of the stack.
It then ends as the job did (exit code or signal), so the agent classifies the job and not its supervisor.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
import time
from pathlib import Path

PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36
STOPS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
NOT_STARTED = 127  # the shell's "command not found"
_POLL_S = 0.02
_KILL_ROUNDS = 200  # each round kills what the last one's victims forked: a fork bomb needs more than 4 s of it


class _Stop(Exception):
    """A stop signal arrived: the job's tree is to be ended."""


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop


def descendants(root: int) -> list[int]:
    """Live (not zombie) processes below `root`, from /proc."""
    children: dict[int, list[int]] = {}
    zombies = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        if fields[0] == "Z":
            zombies.add(int(entry.name))
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return [pid for pid in found if pid not in zombies]


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def _reap(job: int, status: int | None) -> int | None:
    """Collect every ended child without blocking; the job's wait status once it ended."""
    while True:
        try:
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status
        if pid == 0:
            return status
        if pid == job:
            status = wait_status


def end_all(job: int, status: int | None, grace_s: float) -> int | None:
    """SIGTERM every descendant, wait up to `grace_s` for them to go, then SIGKILL until none is left."""
    _signal_all(descendants(os.getpid()), signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while descendants(os.getpid()) and time.monotonic() < deadline:
        status = _reap(job, status)
        time.sleep(_POLL_S)
    for _ in range(_KILL_ROUNDS):
        status = _reap(job, status)
        left = descendants(os.getpid())
        if not left:
            break
        _signal_all(left, signal.SIGKILL)
        time.sleep(_POLL_S / 4)
    return _reap(job, status)


def wait_for_job(job: int) -> int:
    """Block until the job ends, reaping the orphans re-parented here meanwhile; the job's wait status."""
    while True:
        pid, status = os.wait()
        if pid == job:
            return status


def start_job(command: list[str]) -> int:
    """Fork the job: default signal dispositions, then exec (127 when the command cannot start)."""
    job = os.fork()
    if job == 0:
        for signum in (*STOPS, signal.SIGPIPE):
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, set(STOPS))
        try:
            os.execvp(command[0], command)
        except OSError as exc:
            sys.stderr.write(f"could not start {command[0]!r}: {exc}\n")
            os._exit(NOT_STARTED)
    return job


def exit_like(status: int | None) -> None:
    """End the way the job ended: its exit code, or its signal (SIGTERM: the job was stopped before it ended)."""
    signum = os.WTERMSIG(status) if status is not None and os.WIFSIGNALED(status) else None
    if status is None:
        signum = signal.SIGTERM
    if signum is None:
        assert status is not None
        os._exit(os.waitstatus_to_exitcode(status))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the job's crash, not this process's: no core here
    if signum != signal.SIGKILL:  # the one signal whose disposition cannot be set (nor need be)
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)  # a signal whose default is not to end the process


def main(argv: list[str]) -> None:
    """Adopt the job's orphans, die-signal on the agent's death, run the job, end its tree, end as it did."""
    if len(argv) < 4 or argv[2] != "--":
        sys.stderr.write("usage: job_supervisor.py AGENT_PID GRACE_S -- COMMAND...\n")
        os._exit(2)
    agent, grace_s, command = int(argv[0]), float(argv[1]), argv[3:]
    libc = ctypes.CDLL(None, use_errno=True)
    signal.pthread_sigmask(signal.SIG_BLOCK, set(STOPS))  # a stop before the job exists waits for the handler
    for signum in STOPS:
        signal.signal(signum, _raise_stop)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != agent:
        os._exit(137)  # the agent died before the line above took effect
    job = start_job(command)
    status: int | None = None
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, set(STOPS))
        status = wait_for_job(job)
        signal.pthread_sigmask(signal.SIG_BLOCK, set(STOPS))
    except _Stop:
        signal.pthread_sigmask(signal.SIG_BLOCK, set(STOPS))
    exit_like(end_all(job, status, grace_s if status is None else 0.0))


if __name__ == "__main__":
    main(sys.argv[1:])
