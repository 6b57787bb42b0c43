"""The embedded stack: every function under functions-framework on loopback, plus the bus, agent and endpoint.

A supervisor: it starts and stops processes and threads, and asks its wiring (bootstrap.App, which the composition
root passes) what each of them runs. With `RELAUNCH_BUS=pubsub` the bus is Pub/Sub (the emulator, or a real
project), with a topic and a push subscription to each function's URL, as Eventarc would make them, instead of a
SQLite bus and its dispatcher.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from relaunch.adapters.local.listeners import holds_listener, listening_inodes
from relaunch.adapters.local.periodic import Periodic
from relaunch.adapters.local.stack_ports import ENDPOINT, claim, free_port, plan
from relaunch.adapters.local.stack_warm import PATH as WARM_UP_PATH
from relaunch.adapters.local.stack_warm import VARIABLE as WARM_UP_VARIABLE
from relaunch.adapters.local.stack_warm import WarmUps
from relaunch.adapters.local.state_folder import (
    StackAlreadyRunning,
    make_private,
    owner_pid,
    refuse_second_stack,
    with_local_secrets,
)
from relaunch.config_files import load_specs
from relaunch.domain.commands import COMMANDS_TOPIC, INBOUND_TOPICS, RECONCILE_TOPIC
from relaunch.domain.model import FunctionName
from relaunch.domain.ports import Background, Bus, LocalServer
from relaunch.domain.spec import SpecError
from relaunch.handoff import SECRETS_FD_VARIABLE, hand_over
from relaunch.settings import Settings, child_environment, secret_values

__all__ = ["DASHBOARD", "EmbeddedStack", "StackAlreadyRunning", "free_port", "with_local_secrets"]

log = logging.getLogger(__name__)

FUNCTIONS = tuple(name.value for name in FunctionName)
DASHBOARD = "dashboard"  # served only by stacks that ask for it (`relaunch up`): FUNCTIONS + (DASHBOARD,)
# The topic each CloudEvent function is subscribed to on the local bus (as Eventarc triggers are on GCP).
SUBSCRIPTIONS = {FunctionName.ORCHESTRATOR: COMMANDS_TOPIC, **INBOUND_TOPICS, FunctionName.RECONCILE: RECONCILE_TOPIC}
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


@runtime_checkable
class StartsUp(Protocol):
    """A piece that says when it is ready to work (the local agent), after it was started."""

    def ready(self, timeout: float) -> bool: ...


@dataclass(frozen=True)
class StackBus:
    """The stack's bus, each topic already routed to the functions subscribed to it (Eventarc's part on GCP)."""

    bus: Bus
    dispatcher: Background | None  # the local bus's pusher of deliveries; Pub/Sub pushes by itself
    close: Callable[[], None] | None  # what the stack closes when it stops (the Pub/Sub clients)


class StackWiring(Protocol):
    """What runs beside the functions, for one version of the stack's settings (bootstrap.App implements it)."""

    def endpoint_server(self, host: str, port: int = 0) -> LocalServer: ...

    def stack_bus(self, routes: Mapping[str, tuple[str, str]]) -> StackBus:
        """The bus, pushing each topic of `routes` (function name -> (topic, URL)) to its function."""

    def agent_process(self) -> Background: ...

    def completion_relay(self, bus: Bus) -> Background:
        """Publishes on `bus` the end of each job the agent finished."""


@dataclass
class EmbeddedStack:
    """Starts and stops the whole local stack; `urls` says where each piece listens.

    `wiring` gives, for the stack's settings, what it runs beside its functions: the composition root passes
    bootstrap.App (see bootstrap.embedded_stack); this module builds no adapter itself.
    """

    settings: Settings
    wiring: Callable[[Settings], StackWiring]
    host: str = "127.0.0.1"
    functions: tuple[str, ...] = FUNCTIONS
    _procs: list[FunctionProcess] = field(default_factory=list)
    _dispatcher: Background | None = None
    _close_bus: Callable[[], None] | None = None
    _agent: Background | None = None
    _relay: Background | None = None
    _umask: int | None = None
    _ticker: ReconcileTimer | None = None
    _endpoint: LocalServer | None = None

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
        folder = self.settings.pipelines_dir
        if not folder.is_dir():  # started from another directory, the stack would run with no pipeline at all
            where = folder if folder.is_absolute() else f"{folder} (under {Path.cwd()})"
            raise SpecError(f"no pipelines folder at {where}: set RELAUNCH_PIPELINES_DIR, or start from its parent")
        load_specs(folder)  # a broken spec stops here, naming file and field
        home = self.settings.home.resolve()
        refuse_second_stack(home)
        self._umask = os.umask(PRIVATE_UMASK)
        make_private(home)
        (home / "logs" / "functions").mkdir(parents=True, exist_ok=True)
        ports = plan(self.settings, [*self.functions, ENDPOINT])
        for name, port in ports.items():  # every fixed port before anything starts: one clear error, no half stack
            claim(self.host, port, name)
        if DASHBOARD in ports:  # its address is known before any function starts: reports link to its pages
            ports[DASHBOARD] = ports[DASHBOARD] or free_port(self.host)
            if self.settings.public_url is None:
                self.settings = self.settings.model_copy(
                    update={"public_url": f"http://{self.host}:{ports[DASHBOARD]}"}
                )
        self._endpoint = self.wiring(self.settings).endpoint_server(self.host, ports[ENDPOINT])
        self._endpoint.start()
        self.settings = self.settings.model_copy(update={"home": home, "endpoint_url": self._endpoint.url})
        if not self.settings.insecure_dev_mode:
            self.settings = with_local_secrets(self.settings)
        env = self._function_env()
        self._agent = self.wiring(self.settings).agent_process()  # starts while the functions do (it holds no secret)
        self._agent.start()
        self._procs = [self._spawn(name, env, ports[name]) for name in self.functions]
        warm_ups = WarmUps()  # each function warms up while the others start: the first push is served warm
        for i, proc in enumerate(self._procs):
            for attempt in range(3):
                try:
                    wait_for_port(self._procs[i], timeout)
                    warm_ups.send(self._procs[i].name, self._procs[i].url, timeout)
                    break
                except PortLost:
                    if ports[proc.name] or attempt == 2:  # a fixed port is the user's to free
                        raise
                    self._procs[i] = self._spawn(proc.name, env, 0)  # another free port
        topics = {**SUBSCRIPTIONS, FunctionName.ORCHESTRATOR: self.settings.pubsub_commands_topic}
        routes: dict[str, tuple[str, str]] = {
            name: (topic, self.url_of(name)) for name, topic in topics.items() if name in self.urls
        }
        wiring = self.wiring(self.settings)  # its final settings: with the endpoint's URL and the secrets
        wired = wiring.stack_bus(routes)
        self._close_bus, self._dispatcher = wired.close, wired.dispatcher
        if self._dispatcher is not None:
            self._dispatcher.start()
        self._relay = wiring.completion_relay(wired.bus)
        self._relay.start()
        if FunctionName.RECONCILE in self.urls:
            self._ticker = ReconcileTimer(wired.bus, self.settings.reconcile_interval_s)
            self._ticker.start()
        warm_ups.wait(timeout)
        if isinstance(self._agent, StartsUp):  # a job the first push queues must not wait for the agent to start
            self._agent.ready(timeout)
        self._write_state()
        for name, url in self.urls.items():
            log.info("%s listens on %s", name, url)
        return self

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
        terminate(*(proc.process for proc in self._procs))
        if self._endpoint is not None:
            self._endpoint.stop()
        if self._close_bus is not None:
            self._close_bus()
        if self._procs:
            log.info("stopped %d functions, the agent, the bus and the endpoint", len(self._procs))
        self._procs, self._agent, self._dispatcher, self._endpoint, self._close_bus = [], None, None, None, None
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
        # Secrets never travel in an environment (readable for the process's life): _spawn hands them over.
        stack = {"PYTHONUNBUFFERED": "1", "RELAUNCH_STACK_PID": str(os.getpid()), WARM_UP_VARIABLE: WARM_UP_PATH}
        return {**child_environment(self.settings), **stack}

    def _spawn(self, name: str, env: dict[str, str], port: int) -> FunctionProcess:
        log_path = self.settings.home / "logs" / "functions" / f"{name}.log"
        return spawn_function(name, env, secret_values(self.settings), log_path, self.host, port)

    def _write_state(self) -> None:
        state = {"pid": os.getpid(), "urls": self.urls, "started_at": time.time()}
        path = self.settings.home / "stack.json"
        tmp = path.with_suffix(".json.tmp")
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
            fh.write(json.dumps(state, indent=2))
        os.replace(tmp, path)  # readers (`relaunch simulate`) never see half a file


class ReconcileTimer(Periodic):
    """Publishes a tick on `relaunch-reconcile` every `interval_s` until stopped (Cloud Scheduler's job on GCP)."""

    def __init__(self, bus: Bus, interval_s: float) -> None:
        self._bus = bus
        super().__init__(
            self._tick, interval_s, name="relaunch-reconcile-timer", failure="reconcile tick not published"
        )

    def _tick(self) -> None:
        self._bus.publish(RECONCILE_TOPIC, {"reason": "timer"}, {"source": "relaunch-embedded-timer"})


def spawn_function(
    entry_point: str,
    env: Mapping[str, str],
    secrets: Mapping[str, str],
    log_path: Path,
    host: str = "127.0.0.1",
    port: int = 0,
) -> FunctionProcess:
    """One function under functions-framework in a process of its own, on `port` of `host` (0: a free one), logging
    to `log_path`; `secrets` (setting name -> value) are handed over on a descriptor, never in its environment, and
    the process dies with the one that started it."""
    port = port or free_port(host)
    argv = [sys.executable, "-c", _LAUNCHER, "--target", entry_point, "--source", str(ENTRY_SOURCE)]
    argv += ["--host", host, "--port", str(port)]
    secrets_fd = hand_over(dict(secrets))
    try:
        with os.fdopen(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as out:
            proc = subprocess.Popen(
                argv,
                env={**env, "RELAUNCH_STACK_PID": str(os.getpid()), SECRETS_FD_VARIABLE: str(secrets_fd)},
                pass_fds=(secrets_fd,),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                umask=PRIVATE_UMASK,
            )
    finally:
        os.close(secrets_fd)
    return FunctionProcess(name=entry_point, port=port, process=proc, host=host)


class PortLost(RuntimeError):
    """A function exited while another program listened on its port: the free port was taken before it bound it."""


def wait_for_port(proc: FunctionProcess, timeout: float) -> None:
    """Until the function itself listens (not another program on its port); its early exit or a timeout is a
    RuntimeError, PortLost when another program holds the port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            if listening_inodes(proc.port):
                raise PortLost(f"function {proc.name}: port {proc.port} was taken by another program before it bound")
            raise RuntimeError(f"function {proc.name} exited with {proc.process.returncode} (see its log)")
        try:
            with socket.create_connection((proc.host, proc.port), timeout=0.2):
                if holds_listener(proc.process.pid, proc.port):
                    return
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"function {proc.name} did not listen on port {proc.port} within {timeout:.0f}s")


def terminate(*processes: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """Stop functions' process groups together: SIGTERM to every group first, then each is waited for until one
    shared deadline, then SIGKILL (one after another, eight gunicorn shutdowns took 3.4 s)."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_s
    for process in running:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=5)
