"""Runs a Vertex AI CustomJob's worker pool 0 as a local process, as Vertex runs its container.

There is no container runtime here: the "image" is a folder (`image_folder(imageUri)`, which the Cloud Build
stand-in fills with a checkout of the built commit), copied to a fresh working folder per job as a container starts
from a fresh copy of its image. The process gets the container spec's `command` + `args` (`python`/`python3` is
this process's interpreter, the one with the image's requirements installed) and exactly the environment Vertex
gives a container (https://cloud.google.com/vertex-ai/docs/training/code-requirements#environment-variables): the
spec's `env`, AIP_MODEL_DIR / AIP_CHECKPOINT_DIR / AIP_TENSORBOARD_LOG_DIR under
`jobSpec.baseOutputDirectory.outputUriPrefix`, CLOUD_ML_PROJECT_ID, plus RELAUNCH_GCS_MOUNT_ROOT standing for the
/gcs Cloud Storage FUSE mount. Nothing of this process's environment leaks in but a PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STDERR_LINES = 20


@dataclass(frozen=True)
class JobExit:
    """How a job's process ended: its exit code (None: it never started) and the last lines of its stderr."""

    code: int | None
    stderr_tail: str
    killed: bool = False


def job_environment(job: dict[str, Any], project: str, storage_root: Path, python: str) -> dict[str, str]:
    """The environment Vertex gives worker pool 0's container of `job` (CustomJob JSON)."""
    spec = job["jobSpec"]
    container = spec["workerPoolSpecs"][0].get("containerSpec", {})
    env = {"PATH": os.pathsep.join([str(Path(python).parent), "/usr/local/bin", "/usr/bin", "/bin"])}
    env |= {item["name"]: item.get("value", "") for item in container.get("env", [])}
    base = spec.get("baseOutputDirectory", {}).get("outputUriPrefix", "")
    if base:
        base = base.rstrip("/")
        env |= {
            "AIP_MODEL_DIR": f"{base}/model/",
            "AIP_CHECKPOINT_DIR": f"{base}/checkpoints/",
            "AIP_TENSORBOARD_LOG_DIR": f"{base}/logs/",
        }
    return env | {"CLOUD_ML_PROJECT_ID": project, "RELAUNCH_GCS_MOUNT_ROOT": str(storage_root)}


def job_argv(job: dict[str, Any], python: str) -> list[str]:
    """Worker pool 0's `command` + `args`; ValueError without a command (the image's entrypoint is unknown here)."""
    container = job["jobSpec"]["workerPoolSpecs"][0].get("containerSpec", {})
    command = list(container.get("command", []))
    if not command:
        raise ValueError("containerSpec.command is empty: this stand-in cannot run the image's own entrypoint")
    if command[0] in ("python", "python3"):
        command[0] = python
    return command + list(container.get("args", []))


def timeout_seconds(job: dict[str, Any]) -> float | None:
    """jobSpec.scheduling.timeout (a protobuf Duration, "3600s") in seconds, if set."""
    value = job["jobSpec"].get("scheduling", {}).get("timeout", "")
    return float(value.removesuffix("s")) if value else None


@dataclass
class JobRunner:
    """Starts jobs as processes in threads; `stop()` kills what still runs. `image_folder(imageUri)` is the folder
    holding the image's files (KeyError/FileNotFoundError/ValueError: the job fails as an image pull does)."""

    image_folder: Callable[[str], Path]
    python: str = sys.executable
    _processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _cancelled: set[str] = field(default_factory=set)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopped: bool = False

    def start(
        self,
        key: str,
        job: dict[str, Any],
        env: dict[str, str],
        on_running: Callable[[], None],
        on_exit: Callable[[JobExit], None],
    ) -> None:
        """Run `job` in a thread: `on_running` once its process started, `on_exit` with how it ended."""

        def run() -> None:
            work = Path(tempfile.mkdtemp(prefix="vertex-job-"))
            try:
                on_exit(self._execute(key, job, env, work, on_running))
            finally:
                shutil.rmtree(work, ignore_errors=True)

        thread = threading.Thread(target=run, name=f"vertex-{key}", daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def kill(self, key: str) -> None:
        """Kill a running job's process (a cancel): its exit is reported with killed=True."""
        with self._lock:
            self._cancelled.add(key)
            process = self._processes.get(key)
        if process is not None:
            process.kill()

    def stop(self) -> None:
        """Kill every running job and wait for the threads."""
        with self._lock:
            self._stopped = True
            running = list(self._processes.items())
            threads = list(self._threads)
        for key, _process in running:
            self.kill(key)
        for thread in threads:
            thread.join(10)

    def _execute(
        self, key: str, job: dict[str, Any], env: dict[str, str], work: Path, on_running: Callable[[], None]
    ) -> JobExit:
        container = job["jobSpec"]["workerPoolSpecs"][0].get("containerSpec", {})
        try:
            argv = job_argv(job, self.python)
            image = self.image_folder(container.get("imageUri", ""))
            shutil.copytree(image, work / "app")
        except (KeyError, OSError, ValueError) as exc:
            return JobExit(None, f"could not start {container.get('imageUri', '')!r}: {exc}")
        (work / "home").mkdir()
        stderr_path = work / "stderr"
        with stderr_path.open("wb") as stderr, self._lock:
            if self._stopped or key in self._cancelled:
                return JobExit(None, "cancelled before it started", killed=True)
            process = subprocess.Popen(  # noqa: S603 (the command is the job's, as on Vertex)
                argv, cwd=work / "app", env=env | {"HOME": str(work / "home")}, stdout=subprocess.DEVNULL, stderr=stderr
            )
            self._processes[key] = process
        on_running()
        try:
            code = process.wait(timeout_seconds(job))
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
            return JobExit(code, f"the job ran past jobSpec.scheduling.timeout {timeout_seconds(job):g}s")
        finally:
            with self._lock:
                self._processes.pop(key, None)
        lines = stderr_path.read_text(errors="replace").splitlines()[-STDERR_LINES:]
        return JobExit(code, "\n".join(lines), killed=key in self._cancelled)
