"""The local agent in a process of its own: started by the stack with an allowlisted environment and no secret.

Jobs are the agent's children, so the agent is an ancestor of code that any push brought: it holds nothing worth
reading. It does not even publish on the bus: it writes each job's end in its SQLite table, and the stack's
`CompletionRelay` publishes JobFinished from there (the bus may need credentials; the agent needs none).

Run as `python -m relaunch.adapters.local.agent_process DB LOGS MAX_CONCURRENT SANDBOX HOME RUNS ENVS PARENT_PID
READY_FD`: it writes one byte to READY_FD ("-": none) once it takes jobs, so the stack reports ready only then (a job
queued by the first push would otherwise wait the seconds the agent takes to start).
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from relaunch.adapters.local.agent import LocalAgent
from relaunch.adapters.local.environment import agent_environment
from relaunch.adapters.local.periodic import Periodic
from relaunch.adapters.local.sandbox import SandboxMode, SandboxUnavailable, choose, describe, probe
from relaunch.adapters.local.wake import relay_wake_path
from relaunch.logs import configure as configure_logging
from relaunch.settings import Settings

log = logging.getLogger(__name__)
_STOP_GRACE_S = 10.0


class AgentProcess:
    """Starts and stops the agent's process; it dies with the process that started it (PR_SET_PDEATHSIG)."""

    def __init__(
        self,
        db_path: Path,
        logs_dir: Path,
        max_concurrent: int,
        sandbox: SandboxMode,
        home: Path,
        runs_dir: Path,
        envs_dir: Path,
    ) -> None:
        self._argv = [str(db_path), str(logs_dir), str(max_concurrent), sandbox, str(home), str(runs_dir)]
        self._argv.append(str(envs_dir))
        self._sandbox = sandbox
        self._log = Path(logs_dir) / "agent.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._ready_fd: int | None = None  # read end: the agent writes a byte once it takes jobs

    @classmethod
    def for_settings(cls, s: Settings) -> AgentProcess:
        """The agent of the embedded stack `s` configures."""
        root = (s.artifact_root or str(s.artifacts_dir)).removeprefix("file://")
        runs = Path(root) / "runs" if "://" not in root else s.artifacts_dir / "runs"  # remote outputs: none here
        return cls(s.agent_path, s.logs_dir, s.max_concurrent_jobs, s.job_sandbox, s.home, runs, s.envs_dir)

    def start(self) -> None:
        """Start the agent (from the thread that lives as long as the stack: the death signal follows that thread).

        SandboxUnavailable, before anything starts, when the sandbox is required and this machine cannot give it.
        """
        if self._sandbox == "required" and (why_not := probe()) is not None:
            raise SandboxUnavailable(describe("required", why_not))
        self._log.parent.mkdir(parents=True, exist_ok=True)
        self._ready_fd, ready_w = os.pipe()
        argv = [sys.executable, "-m", __name__, *self._argv, str(os.getpid()), str(ready_w)]
        fd = os.open(self._log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            with os.fdopen(fd, "ab") as out:
                self.process = subprocess.Popen(
                    argv,
                    env=agent_environment(),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    umask=0o077,
                    pass_fds=(ready_w,),
                )
        finally:
            os.close(ready_w)  # the agent holds the only write end: its death reads as end of file

    def ready(self, timeout: float) -> bool:
        """Wait until the agent takes jobs (True), exited or `timeout` seconds passed (False, logged)."""
        fd, self._ready_fd = self._ready_fd, None
        if fd is None:
            return self.process is not None and self.process.poll() is None
        try:
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                if select.select([fd], [], [], left)[0]:
                    if os.read(fd, 1):
                        return True
                    log.warning("the local agent exited while starting (see %s)", self._log)
                    return False
            log.warning("the local agent did not start within %.0f s (see %s)", timeout, self._log)
            return False
        finally:
            os.close(fd)

    def stop(self) -> None:
        """SIGTERM the agent (it kills its jobs, leaving them to be reported interrupted); SIGKILL if it lingers."""
        proc, self.process = self.process, None
        if self._ready_fd is not None:
            os.close(self._ready_fd)
            self._ready_fd = None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class CompletionRelay(Periodic):
    """Delivers the agent's finished jobs to `agent.on_finished` (the stack's bus publisher) from a thread.

    The agent process wakes it when it records a job's end (see wake.py); it also looks every poll interval. A
    completion not delivered stays unnotified, and the next round tries it again.
    """

    def __init__(self, agent: LocalAgent) -> None:
        super().__init__(
            agent.deliver_completions,
            agent.poll_interval,
            name="relaunch-job-completions",
            failure="job completions not delivered",
            wake_path=relay_wake_path(agent.jobs.db_path),
        )


def _die_with_parent(parent: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        sys.exit(0)  # the stack died before the line above took effect


def main(argv: list[str]) -> int:
    """Run the agent's loop until SIGTERM (from the stack, or from Linux when the stack dies)."""
    db, logs, max_concurrent, mode, home, runs, envs, parent, ready = argv
    _die_with_parent(int(parent))
    configure_logging(structured=False)  # a local process: readable lines, in the stack's agent log
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
    signal.signal(signal.SIGINT, lambda signum, frame: stop.append(signum))
    sandbox_mode: SandboxMode = mode  # type: ignore[assignment]  # checked by Settings in the stack
    why_not = probe() if mode != "off" else None
    log.log(logging.INFO if why_not is None else logging.WARNING, describe(sandbox_mode, why_not))
    try:
        sandbox = choose(sandbox_mode, Path(home), Path(runs), why_not, envs_dir=Path(envs))
    except SandboxUnavailable as exc:
        log.error("%s", exc)
        return 3
    # Settings.envs_dir: where the builder made the checkouts' environments.
    agent = LocalAgent(
        Path(db), Path(logs), max_concurrent=int(max_concurrent), sandbox=sandbox, environments=Path(envs)
    )
    log.info("local agent ready: at most %s jobs at once", max_concurrent)
    if ready != "-":
        os.write(int(ready), b"r")
        os.close(int(ready))  # not inherited by the jobs
    agent.run_forever(lambda: bool(stop))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
