"""`relaunch deploy`'s plan, applied to this machine: what the gcp-emulated demo runs.

From the same triggers file (deploy.infra.Infra) that `relaunch deploy` turns into gcloud commands: every declared
function runs under functions-framework on loopback with the environment deploy gives it (plan_functions.function_env,
what `--set-env-vars` sets) plus the values of the secrets it names (what `--set-secrets` injects), and Pub/Sub (the
emulator) is wired as deploy wires it: every declared topic exists, and each trigger's topic is pushed to its
function (Eventarc's subscription). The reconcile schedule is a timer publishing on its topic (Cloud Scheduler's job).
What differs from Google Cloud is said where it is done: `cloud_env` points the SDKs at the stand-ins.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from relaunch.adapters.gcp.pubsub_bus import PubSubBus
from relaunch.adapters.local.stack import FunctionProcess, spawn_function, terminate, wait_for_port
from relaunch.deploy.infra import Infra
from relaunch.deploy.plan_functions import function_env


@dataclass
class LocalDeployment:
    """The declared functions, started, and their triggers wired on the Pub/Sub emulator."""

    infra: Infra
    cloud_env: Mapping[str, str]  # emulator hosts and API endpoints: where the SDKs find the stand-ins
    secrets: Mapping[str, str]  # Secret Manager: secret name -> value
    logs: Path
    reconcile_every_s: float = 60.0
    _procs: dict[str, FunctionProcess] = field(default_factory=dict)
    _bus: PubSubBus | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def url(self, function: str) -> str:
        """Where a declared function (by its deployed name, e.g. relaunch-github-webhook) listens."""
        return self._procs[function].url

    def start(self, timeout: float = 60.0) -> LocalDeployment:
        """Start every function, wait until each listens, then create the topics and the triggers' subscriptions."""
        try:
            self.logs.mkdir(parents=True, exist_ok=True)
            for f in self.infra.functions:
                env = {**self.cloud_env, **function_env(self.infra, f), "PYTHONUNBUFFERED": "1"}
                handed = {_setting(name): self._secret(value) for name, value in f.secrets.items()}
                self._procs[f.name] = spawn_function(f.entry_point, env, handed, self.logs / f"{f.name}.log")
            for proc in self._procs.values():
                wait_for_port(proc, timeout)
            self._wire()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the timer, the functions (process groups and all) and the Pub/Sub clients."""
        self._stop.set()
        terminate(*(proc.process for proc in self._procs.values()))
        self._procs.clear()
        if self._bus is not None:
            self._bus.close()
            self._bus = None

    @property
    def bus(self) -> PubSubBus:
        """The Pub/Sub client the deployment wired with (what stand-ins publish their events through)."""
        assert self._bus is not None, "start() first"
        return self._bus

    def _secret(self, name: str) -> str:
        if name not in self.secrets:
            raise KeyError(f"secret {name!r} is declared in the triggers file but has no value (Secret Manager)")
        return self.secrets[name]

    def _wire(self) -> None:
        bus = self._bus = PubSubBus(self.infra.project)
        for declared in self.infra.topics:
            bus.ensure_topic(declared.name)
        for trigger in self.infra.triggers:
            function = self.infra.function(trigger.function)
            dead_letter = trigger.dead_letter.topic if trigger.dead_letter else None
            attempts = trigger.dead_letter.max_delivery_attempts if trigger.dead_letter else 8
            bus.ensure_push_subscription(
                f"{function.name}-trigger", trigger.topic, self.url(function.name),
                max_attempts=attempts, dead_letter_topic=dead_letter,
            )  # fmt: skip
        if self.infra.reconcile is not None:
            topic = self.infra.reconcile.topic
            threading.Thread(target=self._tick, args=(bus, topic), name="cloud-scheduler", daemon=True).start()

    def _tick(self, bus: PubSubBus, topic: str) -> None:
        while not self._stop.wait(self.reconcile_every_s):
            bus.publish(topic, {"job": "relaunch-reconcile"})


def _setting(variable: str) -> str:
    """A secret's variable (RELAUNCH_GITHUB_WEBHOOK_SECRET) as the setting it fills (github_webhook_secret)."""
    return variable.removeprefix("RELAUNCH_").lower()
