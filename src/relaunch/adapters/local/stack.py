"""The embedded stack: every function under functions-framework on loopback, plus the bus, agent and endpoint.

With `RELAUNCH_BUS=pubsub` the bus is Pub/Sub (the emulator, or a real project): the stack then creates each topic
and a push subscription to each function's URL, as Eventarc would, instead of its own SQLite bus and dispatcher.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relaunch.adapters.local.agent import LocalAgent
from relaunch.adapters.local.agent_process import AgentProcess, CompletionRelay
from relaunch.adapters.local.bus import SqliteBus
from relaunch.adapters.local.bus_dispatcher import BusDispatcher
from relaunch.adapters.local.endpoint_server import EndpointServer
from relaunch.adapters.local.periodic import Periodic
from relaunch.adapters.local.state_folder import (
    StackAlreadyRunning,
    make_private,
    owner_pid,
    refuse_second_stack,
    with_local_secrets,
)
from relaunch.domain.commands import COMMANDS_TOPIC, INBOUND_TOPICS, RECONCILE_TOPIC, JobFinished
from relaunch.domain.model import JobRequest, JobStatus
from relaunch.domain.spec import load_specs
from relaunch.handoff import SECRETS_FD_VARIABLE, hand_over
from relaunch.settings import Settings, secret_fields, secret_values

__all__ = ["EmbeddedStack", "StackAlreadyRunning", "free_port", "with_local_secrets"]

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
PRIVATE_UMASK = 0o077  # every state file 0600 and folder 0700: the supervisor's and its children's
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
from relaunch.handoff import take_handed_secrets
take_handed_secrets()  # read and close the secrets' descriptor before anything else runs here
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
    _agent: AgentProcess | None = None
    _relay: CompletionRelay | None = None
    _umask: int | None = None
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
        refuse_second_stack(home)
        self._umask = os.umask(PRIVATE_UMASK)
        make_private(home)
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
        s = self.settings
        self._agent = AgentProcess.for_settings(s)
        self._agent.start()
        # The agent holds no credential, not even the bus's: this process publishes what its jobs did.
        completions = LocalAgent(s.agent_path, s.logs_dir, max_concurrent=s.max_concurrent_jobs)
        completions.on_finished = _publisher(bus)
        self._relay = CompletionRelay(completions)
        self._relay.start()
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
        if self._relay is not None:
            self._relay.stop()
            self._relay = None
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
        if state.exists() and owner_pid(state) == os.getpid():
            state.unlink()
        if self._umask is not None:
            os.umask(self._umask)
            self._umask = None

    def __enter__(self) -> EmbeddedStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _function_env(self) -> dict[str, str]:
        s = self.settings
        secret = {f"relaunch_{name}" for name in secret_fields()}
        # Secrets never travel in an environment (readable for the process's life): _spawn hands them over.
        env = {key: value for key, value in os.environ.items() if key.lower() not in secret}
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
        return env

    def _spawn(self, name: str, env: dict[str, str]) -> FunctionProcess:
        port = free_port(self.host)
        argv = [sys.executable, "-c", _LAUNCHER, "--target", name, "--source", str(ENTRY_SOURCE)]
        argv += ["--host", self.host, "--port", str(port)]
        log_path = self.settings.home / "logs" / "functions" / f"{name}.log"
        secrets_fd = hand_over(secret_values(self.settings))
        try:
            with os.fdopen(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as out:
                proc = subprocess.Popen(
                    argv,
                    env={**env, SECRETS_FD_VARIABLE: str(secrets_fd)},
                    pass_fds=(secrets_fd,),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    umask=PRIVATE_UMASK,
                )
        finally:
            os.close(secrets_fd)
        return FunctionProcess(name=name, port=port, process=proc, host=self.host)

    def _write_state(self) -> None:
        state = {"pid": os.getpid(), "urls": self.urls, "started_at": time.time()}
        path = self.settings.home / "stack.json"
        tmp = path.with_suffix(".json.tmp")
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
            fh.write(json.dumps(state, indent=2))
        os.replace(tmp, path)  # readers (`relaunch simulate`) never see half a file


class ReconcileTimer(Periodic):
    """Publishes a tick on `relaunch-reconcile` every `interval_s` until stopped (Cloud Scheduler's job on GCP)."""

    def __init__(self, bus: Any, interval_s: float) -> None:
        super().__init__(
            lambda: bus.publish(RECONCILE_TOPIC, {"reason": "timer"}, {"source": "relaunch-embedded-timer"}),
            interval_s,
            name="relaunch-reconcile-timer",
            failure="reconcile tick not published",
        )


def _publisher(bus: Any):  # type: ignore[no-untyped-def]
    def on_finished(request: JobRequest, status: JobStatus) -> None:
        command = JobFinished(run_id=request.run_id, step=request.step, job_id=status.id, state=status.state)
        bus.publish(COMMANDS_TOPIC, command.model_dump(), {"run_id": request.run_id})

    return on_finished


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
