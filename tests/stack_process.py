"""`relaunch up` as a separate process that tests can start, kill -9 and restart on the same home."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


def children_of(pid: int) -> list[int]:
    """The live direct children of a process, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found.append(int(entry.name))
    return found


def cmdline(pid: int) -> str:
    """A process's command line ('' once it is gone)."""
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@dataclass
class Killed:
    """What a kill -9 of the stack left behind: function processes and training jobs that outlived it."""

    functions: list[int] = field(default_factory=list)
    jobs: list[int] = field(default_factory=list)
    surviving_functions: list[int] = field(default_factory=list)
    surviving_jobs: list[int] = field(default_factory=list)


@dataclass
class StackProcess:
    """One `relaunch up` in its own session; `urls` are its functions' addresses once it is up."""

    env: dict[str, str]
    home: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None
    urls: dict[str, str] = field(default_factory=dict)

    def start(self, timeout: float = 60.0) -> StackProcess:
        """Start the stack and return once its own stack.json (not a dead predecessor's) says it listens."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "relaunch.cli", "up"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        state = self.home / "stack.json"
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"relaunch up exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            try:
                written = json.loads(state.read_text())
                if written["pid"] == self.process.pid:
                    self.urls = written["urls"]
                    return self
            except (OSError, ValueError, KeyError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"relaunch up did not come up within {timeout:.0f}s")
            time.sleep(0.05)

    def kill9(self, timeout: float = 20.0) -> Killed:
        """SIGKILL `relaunch up` only; wait for its functions to follow it (PR_SET_PDEATHSIG), and report survivors.

        Training jobs that outlive the stack are then SIGKILLed too, as the crash of the machine would, so the
        restarted stack is tested against a clean crash; the caller decides what survivors mean.
        """
        assert self.process is not None
        pid = self.process.pid
        kids = children_of(pid)
        killed = Killed(
            functions=[k for k in kids if "--target" in cmdline(k)],
            jobs=[k for k in kids if "--target" not in cmdline(k)],
        )
        os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=timeout)
        self.process = None
        deadline = time.monotonic() + timeout
        while any(alive(k) for k in killed.functions + killed.jobs) and time.monotonic() < deadline:
            time.sleep(0.05)
        killed.surviving_functions = [k for k in killed.functions if alive(k)]
        killed.surviving_jobs = [k for k in killed.jobs if alive(k)]
        for leftover in killed.surviving_functions + killed.surviving_jobs:
            _kill_group(leftover)
        return killed

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM the stack (a clean stop); SIGKILL it if it does not stop in time. Its exit code."""
        if self.process is None:
            return None
        proc, self.process = self.process, None
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return None
        except ProcessLookupError:
            return proc.wait()


def _kill_group(pid: int) -> None:
    """SIGKILL a process's group (each job and function leads its own session), or the process alone."""
    for kill, target in ((os.killpg, pid), (os.kill, pid)):
        try:
            kill(target, signal.SIGKILL)
            return
        except (ProcessLookupError, PermissionError):
            continue
