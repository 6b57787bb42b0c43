"""Local training agent: a priority queue of subprocess jobs in SQLite, so any process can submit and ask.

The agent reports facts ("exited with code 3", "killed by signal SIGKILL", "the agent restarted while the job was
running") and finishes a failed job as failed; it never retries on its own. Whether to retry is decided by one policy
(domain/failures.py, applied by the orchestrator) for this agent and Vertex alike; a retry is a new submission
whose `not_before` the queue honours.

The loop wakes when a job exits (its pidfd), when a submit from any process nudges its socket, and every poll
interval as the safety net; it nudges the stack's completion relay when it records a job's end (see wake.py for why
the sockets give a job nothing).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from relaunch import logs
from relaunch.adapters.local import wake
from relaunch.adapters.local.agent_jobs import JobTable
from relaunch.adapters.local.environment import job_environment
from relaunch.adapters.local.pyenv import environment_of
from relaunch.adapters.local.sandbox import JobSandbox
from relaunch.domain.model import JobRequest, JobState, JobStatus

log = logging.getLogger(__name__)

# Runs each job under a supervisor that ends everything the job started (setsid'd and orphaned processes included)
# when the job ends, when it is stopped, and when this agent's process dies, even by SIGKILL: a crashed agent never
# leaves a job writing into a run's folders while the restarted agent retries it.
SUPERVISOR = Path(__file__).with_name("job_supervisor.py")

OnFinished = Callable[[JobRequest, JobStatus], None]
TAIL_LINES = 20
_TERM_GRACE_S = 1.0  # the supervisor's: SIGTERM to the job's tree, SIGKILL after this
_SUPERVISOR_MARGIN_S = 5.0  # then the supervisor itself has this long to finish before it is SIGKILLed
_MAX_NOTIFY_BACKOFF_S = 5.0


def job_id_for(key: str) -> str:
    """The job id derived from an idempotency key."""
    return "job-" + hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass
class _Running:
    request: JobRequest
    job_id: str
    attempt: int
    proc: subprocess.Popen[bytes]
    deadline: float
    pidfd: int | None  # readable once the job's supervisor exits: the loop wakes on it


class LocalAgent:
    """A `TrainingBackend` running jobs as local subprocesses; `start()` runs the loop in this process."""

    def __init__(
        self,
        db_path: Path,
        logs_dir: Path,
        *,
        max_concurrent: int = 2,
        on_finished: OnFinished | None = None,
        poll_interval: float = 0.05,
        sandbox: JobSandbox | None = None,
        environments: Path | None = None,
    ) -> None:
        self.jobs = JobTable(db_path)
        self.sandbox = sandbox
        self.environments = environments  # where the builder keeps checkouts' Python environments (None: not used)
        self.logs_dir = Path(logs_dir)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.max_concurrent = max_concurrent
        self.on_finished = on_finished
        self.poll_interval = poll_interval
        self._running: dict[str, _Running] = {}
        self._notify_backoff: dict[str, tuple[float, float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wakes: wake.WakeSocket | None = None  # bound while the loop runs: a submit from anywhere wakes it

    # --- TrainingBackend -------------------------------------------------------------------------------------

    def submit(self, request: JobRequest) -> str:
        """Queue the job, idempotent on request.key; returns the job id."""
        job_id = job_id_for(request.key)
        self.jobs.insert(job_id, request)
        wake.nudge(wake.wake_path(self.jobs.db_path))  # committed: the agent's next look will find it
        return job_id

    def status(self, job_id: str) -> JobStatus:
        """The job's state from the database (KeyError if unknown)."""
        row = self.jobs.get(job_id)
        if row is None:
            raise KeyError(job_id)
        return self._status_of(row)

    def cancel(self, job_id: str) -> None:
        """Cancel a queued job, or terminate a running one's process group (KeyError if unknown)."""
        before = self.jobs.cancel(job_id)
        if before["state"] == "running" and before["pid"]:
            _signal_group(before["pid"], signal.SIGTERM)

    def list_jobs(self, *states: JobState) -> list[tuple[JobRequest, JobStatus]]:
        """Jobs (optionally only those in `states`) in submission order."""
        return [(_request_of(row), self._status_of(row)) for row in self.jobs.in_states(*states)]

    def log_path(self, job_id: str) -> Path:
        """Where the job's output goes (all attempts, appended)."""
        return self.logs_dir / f"{job_id}.log"

    # --- the loop --------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Recover jobs a previous agent left running, then run the loop in a daemon thread."""
        if self._thread is not None:
            return
        self._recover_orphans()
        self._stop.clear()
        self._wakes = wake.WakeSocket.bind(wake.wake_path(self.jobs.db_path))
        self._thread = threading.Thread(target=self._loop, name="relaunch-local-agent", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop and kill running jobs, leaving them `running`: the next start reports them interrupted."""
        self._stop.set()
        if self._thread is not None:
            wake.nudge(wake.wake_path(self.jobs.db_path))
            self._thread.join(timeout=3)
            self._thread = None
        self._end_all()

    def run_forever(self, stopped: Callable[[], bool]) -> None:
        """Recover orphans, run the loop in this thread until `stopped()` (a signal handler's flag), kill the jobs."""
        self._recover_orphans()
        self._wakes = wake.WakeSocket.bind(wake.wake_path(self.jobs.db_path))
        try:
            while not stopped():
                self._iterate()
                self._wait(time.sleep)  # not Event.wait: a signal handler may not take its lock
        finally:
            self._end_all()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._iterate()
            self._wait(self._stop.wait)

    def _wait(self, sleep: Callable[[float], object]) -> None:
        """Until a job exits, a submit or stop nudges the socket, or a poll interval passed (the safety net)."""
        fds = [run.pidfd for run in self._running.values() if run.pidfd is not None]
        if self._wakes is not None:
            fds.append(self._wakes.fileno())
        wake.wait(fds, self.poll_interval, sleep)
        if self._wakes is not None:
            self._wakes.drain()

    def _end_all(self) -> None:
        """Kill the running jobs (left `running` for the next start to report) and let go of the wake-ups."""
        _terminate_all([r.proc for r in self._running.values()])
        for job_id in list(self._running):
            self._forget(job_id)
        wakes, self._wakes = self._wakes, None
        if wakes is not None:
            wakes.close()

    def _forget(self, job_id: str) -> None:
        run = self._running.pop(job_id, None)  # one pop per job, so a pidfd is closed once even if stop() races
        if run is not None and run.pidfd is not None:
            os.close(run.pidfd)

    def _iterate(self) -> None:
        try:
            self.tick()
        except Exception:
            log.exception("local agent loop iteration failed")

    def tick(self) -> None:
        """One iteration: reap finished processes, launch queued jobs, deliver completions (if it has a callback)."""
        self._reap()
        while len(self._running) < self.max_concurrent and not self._stop.is_set():
            row = self.jobs.claim_next()
            if row is None:
                break
            self._launch(row)
        if self.on_finished is not None:  # else whoever has the callback delivers them (the stack's relay)
            self.deliver_completions()

    def _recover_orphans(self) -> None:
        for row in self.jobs.in_states("running"):
            if row["pid"]:  # normally gone with its agent (PR_SET_PDEATHSIG); make sure it cannot write on
                try:
                    os.killpg(int(row["pid"]), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            self.jobs.finish(row["id"], row["attempts"], "failed", "the agent restarted while the job was running")
            wake.nudge(wake.relay_wake_path(self.jobs.db_path))

    def _launch(self, row: sqlite3.Row) -> None:
        request, job_id, attempt = _request_of(row), row["id"], row["attempts"]
        try:
            proc = self._spawn(request, job_id, attempt)
        except (OSError, ValueError) as exc:  # ValueError: a run id the sandbox cannot make a folder of
            self._finish(request, job_id, attempt, "failed", f"could not start {request.command!r}: {exc}")
            return
        self.jobs.set_pid(job_id, proc.pid)
        _about(request)
        log.info("%s job %s (attempt %d) started: %s", request.step, job_id, attempt, shlex.join(request.command))
        deadline = time.monotonic() + request.timeout_s
        self._running[job_id] = _Running(request, job_id, attempt, proc, deadline, wake.pidfd_of(proc.pid))

    def _spawn(self, request: JobRequest, job_id: str, attempt: int) -> subprocess.Popen[bytes]:
        # Not this process's environment: a job runs code from any push, so it gets an allowlist and no secret.
        python_env = environment_of(Path(request.image), self.environments) if self.environments else None
        env = job_environment(request.env, self.max_concurrent, request.output_dir, python_env)
        sandbox = self.sandbox.prefix_for(request.image, request.run_id, python_env) if self.sandbox else []
        with self.log_path(job_id).open("ab") as out:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            header = f"--- attempt {attempt} at {stamp} in {request.image}: {shlex.join(request.command)}\n"
            out.write(header.encode())
            out.flush()
            return subprocess.Popen(
                [sys.executable, "-I", str(SUPERVISOR), str(os.getpid()), str(_TERM_GRACE_S), "--", *sandbox]
                + request.command,
                cwd=request.image,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                umask=0o077,  # its outputs and checkouts are for the stack, not for other users
            )

    def _reap(self) -> None:
        for job_id, run in list(self._running.items()):
            if not self._still_ours(run):
                _terminate_all([run.proc])
            elif run.proc.poll() is None and time.monotonic() > run.deadline:
                _terminate_all([run.proc])
                self._finish(run.request, job_id, run.attempt, "failed", f"timed out after {run.request.timeout_s:g}s")
            elif run.proc.returncode is None:
                continue
            else:
                self._classify(run, run.proc.returncode)
            self._forget(job_id)

    def _still_ours(self, run: _Running) -> bool:
        """False once a cancel (from any process) has moved the attempt out of `running`."""
        row = self.jobs.get(run.job_id)
        return row is not None and row["state"] == "running" and row["attempts"] == run.attempt

    def _classify(self, run: _Running, returncode: int) -> None:
        if returncode == 0:
            state, message = "succeeded", "exited with code 0"
        elif returncode < 0:
            state, message = "failed", f"killed by signal {_signal_name(-returncode)}"
        else:
            state, message = "failed", f"exited with code {returncode}"
        self._finish(run.request, run.job_id, run.attempt, state, message)

    def _finish(self, request: JobRequest, job_id: str, attempt: int, state: str, message: str) -> None:
        if self.jobs.finish(job_id, attempt, state, message):
            wake.nudge(wake.relay_wake_path(self.jobs.db_path))  # the stack's relay publishes it now, not next poll
            _about(request)
            log.info("%s job %s (attempt %d) %s: %s", request.step, job_id, attempt, state, message)

    def deliver_completions(self) -> None:
        """Hand each finished, not yet notified job to `on_finished`, retrying a failed call with backoff."""
        now = time.monotonic()
        for row in self.jobs.unnotified():
            job_id = row["id"]
            due, delay = self._notify_backoff.get(job_id, (0.0, self.poll_interval))
            if now < due:
                continue
            try:
                if self.on_finished is not None:
                    self.on_finished(_request_of(row), self._status_of(row))
            except Exception:
                log.exception("on_finished callback failed for %s; will retry", job_id)
                self._notify_backoff[job_id] = (now + delay, min(delay * 2, _MAX_NOTIFY_BACKOFF_S))
                continue
            self.jobs.mark_notified(job_id)
            self._notify_backoff.pop(job_id, None)

    def _status_of(self, row: sqlite3.Row) -> JobStatus:
        return JobStatus(
            id=row["id"],
            state=row["state"],
            attempts=row["attempts"],
            message=row["message"],
            log_tail=self._log_tail(row["id"]),
            started_at=row["started_at"],
            finished_at=row["finished_at"],
        )

    def _log_tail(self, job_id: str, lines: int = TAIL_LINES) -> str:
        path = self.log_path(job_id)
        if not path.exists():
            return ""
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - 16384))
            text = f.read().decode("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def _about(request: JobRequest) -> None:
    """The lines that follow are about this job's run (the agent's one loop handles one job at a time)."""
    logs.begin(None)
    logs.bind(run_id=request.run_id)


def _request_of(row: sqlite3.Row) -> JobRequest:
    return JobRequest.model_validate_json(row["request"])


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


def _signal_group(pid: int, signum: int) -> None:
    """Signal a job's process group (the job leads its own session), ignoring a group that is gone."""
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _terminate_all(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each job's group: its supervisor ends the job's whole tree within its grace. A supervisor still there
    after that and a margin is SIGKILLed with its group (it should never come to that), and every one is reaped."""
    for proc in procs:
        _signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + _TERM_GRACE_S + _SUPERVISOR_MARGIN_S
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
