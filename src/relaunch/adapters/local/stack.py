"""The embedded stack: every function under functions-framework on loopback, plus the bus, agent and endpoint.

With `RELAUNCH_BUS=pubsub` the bus is Pub/Sub (the emulator, or a real project): the stack then creates each topic
and a push subscription to each function's URL, as Eventarc would, instead of its own SQLite bus and dispatcher.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from relaunch.adapters.local.agent import LocalAgent
from relaunch.adapters.local.bus import SqliteBus
from relaunch.adapters.local.bus_dispatcher import BusDispatcher
from relaunch.adapters.local.endpoint_server import EndpointServer
from relaunch.pipelines.commands import COMMANDS_TOPIC, INBOUND_TOPICS, RECONCILE_TOPIC, JobFinished
from relaunch.pipelines.model import JobRequest, JobStatus
from relaunch.pipelines.spec import load_specs
from relaunch.settings import Settings, reveal

log = logging.getLogger(__name__)

FUNCTIONS = (
    "github_webhook",
    "wandb_webhook",
    "orchestrator",
    "drift_alert",
    "schedule_tick",
    "build_status",
    "reconcile",
)
# The topic each CloudEvent function is subscribed to on the local bus (as Eventarc triggers are on GCP).
SUBSCRIPTIONS = {"orchestrator": COMMANDS_TOPIC, **INBOUND_TOPICS, "reconcile": RECONCILE_TOPIC}
# The stack's own secrets, made once in its home (mode 0600) when none is configured.
SECRET_FILES = {"github_webhook_secret": "github_webhook_secret", "wandb_webhook_token": "wandb_webhook_token"}
ENTRY_SOURCE = Path(__file__).resolve().parents[2] / "functions" / "main.py"


# Runs functions-framework exactly as `python -m functions_framework` does, after asking Linux to SIGTERM it when
# the stack that started it dies (even by SIGKILL), so a crashed stack never leaves functions behind.
_LAUNCHER = """
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass
if os.getppid() != int(os.environ.get("RELAUNCH_STACK_PID", os.getppid())):
    sys.exit(0)  # the stack died before the line above took effect
from functions_framework._cli import _cli
_cli(prog_name="functions-framework")
"""


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free right now on `host`."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class FunctionProcess:
    """One function served by functions-framework in its own process."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"


@dataclass
class EmbeddedStack:
    """Starts and stops the whole local stack; `urls` says where each piece listens."""

    settings: Settings
    host: str = "127.0.0.1"
    functions: tuple[str, ...] = FUNCTIONS
    _procs: list[FunctionProcess] = field(default_factory=list)
    _dispatcher: BusDispatcher | None = None
    _bus: Any = None
    _agent: LocalAgent | None = None
    _ticker: ReconcileTimer | None = None
    _endpoint: EndpointServer | None = None

    @property
    def urls(self) -> dict[str, str]:
        found = {p.name: p.url for p in self._procs}
        if self._endpoint is not None:
            found["endpoint"] = self._endpoint.url
        return found

    def start(self, timeout: float = 30.0) -> EmbeddedStack:
        """Start everything and wait until each function answers on its port; on failure stop what started."""
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> EmbeddedStack:
        load_specs(self.settings.pipelines_dir)  # a broken spec stops here, naming file and field
        home = self.settings.home.resolve()
        _refuse_second_stack(home)
        (home / "logs" / "functions").mkdir(parents=True, exist_ok=True)
        self._endpoint = EndpointServer(self.settings.endpoint_state_path, host=self.host, port=0)
        self._endpoint.start()
        self.settings = self.settings.model_copy(update={"home": home, "endpoint_url": self._endpoint.url})
        if not self.settings.insecure_dev_mode:
            self.settings = with_local_secrets(self.settings)
        env = self._function_env()
        self._procs = [self._spawn(name, env) for name in self.functions]
        for proc in self._procs:
            _wait_for_port(proc, timeout)
        if self.settings.adapter("bus") == "pubsub":
            bus = self._bus = self._pubsub_subscriptions()
        else:
            bus = SqliteBus(self.settings.bus_path)
            for name, topic in SUBSCRIPTIONS.items():
                if name in self.urls:
                    bus.subscribe(name, topic, self.url_of(name))
            self._dispatcher = BusDispatcher(self.settings.bus_path)
            self._dispatcher.start()
        self._agent = LocalAgent(
            self.settings.agent_path,
            self.settings.logs_dir,
            max_concurrent=self.settings.max_concurrent_jobs,
            on_finished=_publisher(bus),
        )
        self._agent.start()
        if "reconcile" in self.urls:
            self._ticker = ReconcileTimer(bus, self.settings.reconcile_interval_s)
            self._ticker.start()
        self._write_state()
        return self

    def _pubsub_subscriptions(self) -> Any:
        """A PubSubBus whose topics exist and push to the started functions (Eventarc's part on GCP)."""
        from relaunch.adapters.gcp.pubsub_bus import PubSubBus

        if not self.settings.gcp_project:
            raise ValueError("gcp_project: RELAUNCH_GCP_PROJECT is required when RELAUNCH_BUS=pubsub")
        bus = PubSubBus(self.settings.gcp_project)
        try:
            for name, topic in SUBSCRIPTIONS.items():
                if name in self.urls:
                    bus.ensure_topic(topic)
                    bus.ensure_push_subscription(f"relaunch-{name.replace('_', '-')}", topic, self.url_of(name))
        except BaseException:
            bus.close()
            raise
        return bus

    def url_of(self, name: str) -> str:
        """Where a started function listens."""
        return self.urls[name]

    def stop(self) -> None:
        """Stop everything this stack started (process groups included)."""
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        if self._agent is not None:
            self._agent.stop()
        if self._dispatcher is not None:
            self._dispatcher.stop()
        for proc in self._procs:
            _terminate(proc.process)
        if self._endpoint is not None:
            self._endpoint.stop()
        if self._bus is not None:
            self._bus.close()
        self._procs, self._agent, self._dispatcher, self._endpoint, self._bus = [], None, None, None, None
        state = self.settings.home / "stack.json"
        if state.exists() and _owner_pid(state) == os.getpid():
            state.unlink()

    def __enter__(self) -> EmbeddedStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _function_env(self) -> dict[str, str]:
        s = self.settings
        env = dict(os.environ)
        env.update(
            RELAUNCH_PROFILE=s.profile,
            RELAUNCH_HOME=str(s.home),
            RELAUNCH_PIPELINES_DIR=str(s.pipelines_dir.resolve()),
            RELAUNCH_ENDPOINT_URL=s.endpoint_url,
            RELAUNCH_MAX_CONCURRENT_JOBS=str(s.max_concurrent_jobs),
            RELAUNCH_MAX_BODY_BYTES=str(s.max_body_bytes),
            PYTHONUNBUFFERED="1",
            RELAUNCH_STACK_PID=str(os.getpid()),
        )
        # Adapter choices made in code (not only in the environment) must reach the functions too; the emulator
        # hosts (PUBSUB_EMULATOR_HOST, FIRESTORE_EMULATOR_HOST) come with os.environ.
        for port in ("store", "bus"):
            env[f"RELAUNCH_{port.upper()}"] = s.adapter(port)
        if s.gcp_project:
            env["RELAUNCH_GCP_PROJECT"] = s.gcp_project
        for name in ("github_webhook_secret", "wandb_webhook_token", "wandb_webhook_secret"):
            value = reveal(getattr(s, name))
            if value:
                env[f"RELAUNCH_{name.upper()}"] = value
        return env

    def _spawn(self, name: str, env: dict[str, str]) -> FunctionProcess:
        port = free_port(self.host)
        argv = [sys.executable, "-c", _LAUNCHER, "--target", name, "--source", str(ENTRY_SOURCE)]
        argv += ["--host", self.host, "--port", str(port)]
        log_path = self.settings.home / "logs" / "functions" / f"{name}.log"
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        return FunctionProcess(name=name, port=port, process=proc, host=self.host)

    def _write_state(self) -> None:
        state = {"pid": os.getpid(), "urls": self.urls, "started_at": time.time()}
        path = self.settings.home / "stack.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state, indent=2))
        os.replace(tmp, path)  # readers (`relaunch simulate`) never see half a file


class ReconcileTimer:
    """Publishes a tick on `relaunch-reconcile` every `interval_s` until stopped (Cloud Scheduler's job on GCP)."""

    def __init__(self, bus: Any, interval_s: float) -> None:
        self._bus, self._interval_s = bus, interval_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="relaunch-reconcile-timer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stopped.wait(self._interval_s):
            try:
                self._bus.publish(RECONCILE_TOPIC, {"reason": "timer"}, {"source": "relaunch-embedded-timer"})
            except Exception:  # the next tick tries again
                log.exception("reconcile tick not published")


def with_local_secrets(settings: Settings) -> Settings:
    """Fill each webhook secret left unset from the stack's own file in its home (created once, mode 0600)."""
    update: dict[str, SecretStr] = {}
    for name, filename in SECRET_FILES.items():
        if name == "wandb_webhook_token" and reveal(settings.wandb_webhook_secret):
            continue  # a configured signing secret is W&B authentication enough
        if reveal(getattr(settings, name)):
            continue
        path = settings.home / filename
        if not path.exists():
            _create_secret(path)
        update[name] = SecretStr(path.read_text().strip())
    return settings.model_copy(update=update) if update else settings


def _create_secret(path: Path) -> None:
    """Write a new random secret to `path` (0600) unless another process got there first; never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
    try:
        os.link(tmp, path)  # atomic, and refuses to replace a secret someone already uses
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def _publisher(bus: Any):  # type: ignore[no-untyped-def]
    def on_finished(request: JobRequest, status: JobStatus) -> None:
        command = JobFinished(run_id=request.run_id, step=request.step, job_id=status.id, state=status.state)
        bus.publish(COMMANDS_TOPIC, command.model_dump(), {"run_id": request.run_id})

    return on_finished


class StackAlreadyRunning(RuntimeError):
    """Another live stack owns this state folder (two agents on one queue would run jobs twice)."""


def _owner_pid(path: Path) -> int | None:
    try:
        return int(json.loads(path.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _refuse_second_stack(home: Path) -> None:
    pid = _owner_pid(home / "stack.json")
    if pid is None or pid == os.getpid():
        return
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return  # stale: the stack that wrote it is gone
    except PermissionError:
        pass
    raise StackAlreadyRunning(
        f"a relaunch stack (pid {pid}) already runs on {home}; stop it or use another RELAUNCH_HOME"
    )


def _wait_for_port(proc: FunctionProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise RuntimeError(f"function {proc.name} exited with {proc.process.returncode} (see its log)")
        try:
            with socket.create_connection((proc.host, proc.port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"function {proc.name} did not listen on port {proc.port} within {timeout:.0f}s")


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=5)
