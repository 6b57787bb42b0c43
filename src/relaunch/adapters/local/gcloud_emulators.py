"""Google's official Pub/Sub and Firestore emulators as throwaway local servers (the gcp-emulated demo, and tests).

Each emulator runs in its own process group (gcloud's Python wrapper plus the Java server it spawns) on a free
loopback port, and `stop()` kills the whole group, so no Java process outlives whoever started it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from relaunch.adapters.local.stack import free_port

Kind = Literal["pubsub", "firestore"]

# gcloud component folder (under <sdk root>/platform) and the variable the SDKs read, per emulator.
COMPONENTS: dict[str, str] = {"pubsub": "pubsub-emulator", "firestore": "cloud-firestore-emulator"}
HOST_VARIABLES: dict[str, str] = {"pubsub": "PUBSUB_EMULATOR_HOST", "firestore": "FIRESTORE_EMULATOR_HOST"}


class EmulatorUnavailable(RuntimeError):
    """This machine cannot run the emulator (no gcloud, no component, no Java)."""


class EmulatorCrashed(RuntimeError):
    """The emulator is installed but did not come up."""


@dataclass
class Emulator:
    """A running emulator: where it listens, how long it took to answer, and its log."""

    kind: Kind
    host: str
    process: subprocess.Popen[bytes]
    log_path: Path
    startup_s: float = 0.0
    stopped: bool = field(default=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def env(self) -> dict[str, str]:
        """The environment variable that points the Google SDK at this emulator."""
        return {HOST_VARIABLES[self.kind]: self.host}

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """Kill the whole process group (gcloud and its Java child) and wait until none of it is left."""
        if self.stopped:
            return
        self.stopped = True
        pgid = self.process.pid  # start_new_session=True: the group id is the leader's pid
        for sig in (signal.SIGTERM, signal.SIGKILL):
            _signal_group(pgid, sig)
            if _wait_group_gone(self.process, pgid, timeout):
                self.log_path.unlink(missing_ok=True)
                return
        raise RuntimeError(f"{self.kind} emulator process group {pgid} survived SIGKILL")


def unavailable_reason(kind: Kind) -> str | None:
    """Why the emulator cannot run here, or None if it should."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return "gcloud is not on PATH (install the Google Cloud SDK to run the emulator tests)"
    if shutil.which("java") is None:
        return f"the {kind} emulator needs Java, and java is not on PATH"
    platform = Path(os.path.realpath(gcloud)).parent.parent / "platform"
    if platform.is_dir() and not (platform / COMPONENTS[kind]).is_dir():
        return f"gcloud component {COMPONENTS[kind]} is not installed (gcloud components install {COMPONENTS[kind]})"
    return None


def command(kind: Kind, host: str, project: str) -> list[str]:
    if kind == "pubsub":
        return ["gcloud", "beta", "emulators", "pubsub", "start", f"--host-port={host}", f"--project={project}"]
    return ["gcloud", "emulators", "firestore", "start", f"--host-port={host}"]


def start(kind: Kind, *, project: str = "test-project", timeout: float = 60.0) -> Emulator:
    """Start the emulator on a free loopback port and wait until it answers.

    EmulatorUnavailable when it is not installed here; EmulatorCrashed when it is but does not come up.
    """
    reason = unavailable_reason(kind)
    if reason:
        raise EmulatorUnavailable(reason)
    host = f"127.0.0.1:{free_port()}"
    fd, name = tempfile.mkstemp(prefix=f"relaunch-{kind}-emulator-", suffix=".log")
    log_path = Path(name)
    began = time.monotonic()
    with os.fdopen(fd, "wb") as log:
        env = {**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}
        process = subprocess.Popen(
            command(kind, host, project),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    emulator = Emulator(kind, host, process, log_path)
    try:
        _wait_ready(emulator, timeout)
    except BaseException:
        emulator.stop()
        raise
    emulator.startup_s = time.monotonic() - began
    return emulator


def reset_firestore(emulator: Emulator, project: str, database: str = "(default)") -> None:
    """Delete every document of one project's database in the Firestore emulator."""
    url = f"{emulator.url}/emulator/v1/projects/{project}/databases/{database}/documents"
    with urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=10):
        pass


def _wait_ready(emulator: Emulator, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if emulator.process.poll() is not None:
            raise EmulatorCrashed(
                f"{emulator.kind} emulator exited with {emulator.process.returncode}: {emulator.log_tail()}"
            )
        try:
            with urllib.request.urlopen(emulator.url + "/", timeout=1) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    raise EmulatorCrashed(f"{emulator.kind} emulator did not answer within {timeout}s: {emulator.log_tail()}")


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _wait_group_gone(process: subprocess.Popen[bytes], pgid: int, timeout: float) -> bool:
    """True once no process of the group is left (the leader reaped by us, orphans by init)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process.poll()
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False
