"""Where Linux allows it, each local job runs in private PID and mount namespaces that hide the stack from it.

Jobs run as the stack's own OS user, so without this a job could read the stack's processes (/proc/<pid>/mem,
environ) and open its state by path. In the sandbox the job sees only its own processes, and `$RELAUNCH_HOME` is an
empty read-only tmpfs except its checkout and its run's folder, bound back at the same paths (the staged champion
read-only). `mount_plan` and `command_prefix` are pure; `probe` tries the real thing once per process.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

SandboxMode = Literal["auto", "off", "required"]
RUNNER = Path(__file__).with_name("sandbox_run.py")
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_PROBE_TIMEOUT_S = 30.0
log = logging.getLogger(__name__)


class SandboxUnavailable(RuntimeError):
    """RELAUNCH_JOB_SANDBOX=required, and this machine cannot run jobs in the sandbox."""


@dataclass(frozen=True)
class MountPlan:
    """What a job's mount namespace looks like: `hide` emptied, `keep` bound back, `read_only` bound back read-only."""

    hide: Path
    keep: tuple[Path, ...]
    read_only: tuple[Path, ...]
    workdir: Path
    user_ns: bool

    def to_json(self) -> str:
        """The plan as sandbox_run.py reads it."""
        paths = {"hide": str(self.hide), "workdir": str(self.workdir)}
        lists = {"keep": [str(p) for p in self.keep], "read_only": [str(p) for p in self.read_only]}
        return json.dumps({**paths, **lists, "user_ns": self.user_ns})


def mount_plan(
    home: Path,
    workdir: Path,
    run_dir: Path,
    *,
    as_root: bool,
    environment: Path | None = None,
    envs_dir: Path | None = None,
) -> MountPlan:
    """The plan for one job (absolute paths): hide `home`, keep those of `workdir` and `run_dir` that lie under it.

    The job's Python `environment`, if any, is bound back read-only: a job cannot change what the next job of the
    same dependencies imports. Environments kept outside the home (`envs_dir`, shared by several stacks) are not
    hidden with it, so the whole folder is read-only to the job: it may read other environments (public packages),
    never change one.
    """
    named: tuple[tuple[str, Path], ...] = (("home", home), ("workdir", workdir), ("run_dir", run_dir))
    named += (("environment", environment),) if environment is not None else ()
    for name, path in named:
        if not path.is_absolute() or ".." in path.parts:
            raise ValueError(f"sandbox {name} must be an absolute path without '..', got {str(path)[:200]!r}")
    if home == Path(home.anchor):
        raise ValueError("sandbox home must not be the root folder: the job would see nothing at all")
    for name, path in named[1:]:
        if path == home or path in home.parents:
            raise ValueError(f"sandbox {name} {str(path)[:200]!r} would show the whole home {str(home)[:200]!r}")
    keep = tuple(p for p in (workdir, run_dir) if home in p.parents)  # the rest is not hidden, nothing to keep
    inputs = run_dir / "inputs"
    shared = envs_dir if envs_dir is not None and envs_dir != home and home not in envs_dir.parents else None
    read_only = ((inputs,) if home in inputs.parents else ()) + ((shared,) if shared is not None else ())
    if environment is not None and (shared is None or shared not in environment.parents):
        read_only += (environment,)
    return MountPlan(home, keep, read_only, workdir, user_ns=not as_root)


def command_prefix(plan: MountPlan, python: str = sys.executable) -> list[str]:
    """The argv that runs a command (appended after it) in the sandbox `plan` describes."""
    return [python, "-I", str(RUNNER), plan.to_json(), "--"]


def run_folder(runs_dir: Path, run_id: str) -> Path:
    """A run's own folder under `runs_dir`; ValueError when `run_id` is not one plain folder name."""
    if not _RUN_ID.fullmatch(run_id) or run_id in {".", ".."}:
        raise ValueError(f"job run_id {run_id[:80]!r} is not a plain folder name")
    return runs_dir / run_id


@dataclass(frozen=True)
class JobSandbox:
    """The stack's home to hide from jobs, and the folder holding each run's own folder."""

    home: Path
    runs_dir: Path
    envs_dir: Path | None = None  # the builder's environments (under the home unless RELAUNCH_PYTHON_ENVS_DIR)

    def prefix_for(self, workdir: str, run_id: str, environment: Path | None = None) -> list[str]:
        """The command prefix for a job in `workdir` of run `run_id` (with its Python `environment`, if any);
        creates the run's folders to bind them."""
        run_dir = run_folder(self.runs_dir, run_id)
        # inputs/ too, even empty: bound read-only, a training job cannot plant a "champion" there for the evaluation.
        (run_dir / "inputs").mkdir(mode=0o700, parents=True, exist_ok=True)
        # Real paths: a kept folder must lie under the hidden home as the mounts see it, symlinks resolved.
        real_env = Path(os.path.realpath(environment)) if environment is not None else None
        work, run = Path(os.path.realpath(workdir)), Path(os.path.realpath(run_dir))
        envs = Path(os.path.realpath(self.envs_dir)) if self.envs_dir is not None else None
        plan = mount_plan(self.home, work, run, as_root=_root(), environment=real_env, envs_dir=envs)
        return command_prefix(plan)


def _root() -> bool:
    return os.geteuid() == 0


_PROBE = """
import os, sys
from pathlib import Path
home, work = Path(sys.argv[1]), Path(sys.argv[2])
others = [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, os.getpid())]
assert not others, f"other processes visible: {others}"
assert not (home / "state").exists(), "the home is not hidden"
(work / "written").write_text("ok")
"""


@functools.lru_cache(maxsize=1)
def probe() -> str | None:
    """None when a job can run in the sandbox on this machine, else why not (tried once per process)."""
    with tempfile.TemporaryDirectory(prefix="relaunch-sandbox-probe-") as tmp:
        home = Path(tmp).resolve() / "home"
        work, run_dir = home / "work", home / "runs" / "probe"
        for folder in (work, run_dir / "inputs"):
            folder.mkdir(parents=True)
        (home / "state").write_text("hidden")
        plan = mount_plan(home, work, run_dir, as_root=_root())
        argv = [*command_prefix(plan), sys.executable, "-I", "-c", _PROBE, str(home), str(work)]
        try:
            done = subprocess.run(argv, cwd=work, capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S, env={})
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"the probe could not run: {exc}"
        if done.returncode != 0 or not (work / "written").exists():
            lines = (done.stderr or done.stdout).strip().splitlines() or [f"exit status {done.returncode}"]
            return lines[-1][:300]
    return None


def choose(
    mode: SandboxMode, home: Path, runs_dir: Path, why_not: str | None, *, envs_dir: Path | None = None
) -> JobSandbox | None:
    """The sandbox jobs get for `mode`, given the probe's answer; SandboxUnavailable when required but impossible."""
    if mode == "off":
        return None
    if why_not is not None:
        if mode == "required":
            raise SandboxUnavailable(f"RELAUNCH_JOB_SANDBOX=required, but jobs cannot be sandboxed here: {why_not}")
        return None
    return JobSandbox(home.resolve(), runs_dir.resolve(), envs_dir.resolve() if envs_dir is not None else None)


def describe(mode: SandboxMode, why_not: str | None) -> str:
    """One line saying how jobs will run: for the agent's log and `relaunch doctor`."""
    if mode == "off":
        return "jobs run unsandboxed (RELAUNCH_JOB_SANDBOX=off): a job can read the stack's processes and state"
    if why_not is None:
        return "jobs run in private PID and mount namespaces: they see no process and no state file of the stack"
    if mode == "required":
        return f"RELAUNCH_JOB_SANDBOX=required, but this machine cannot sandbox jobs ({why_not}): the agent will refuse"
    return f"jobs run unsandboxed, the sandbox is unavailable here ({why_not}): a job can read the stack's state"
