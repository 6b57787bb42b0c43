"""The one composition root: settings -> adapters -> services. Tests pass fakes through `overrides`.

Nothing is built at import time; each service is built on first use, so a webhook function pays only for the
store and the bus, never for the training or serving adapters.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relaunch.pipelines.spec import PipelineSpec, load_specs
from relaunch.settings import Settings

if TYPE_CHECKING:
    from relaunch.adapters.local.stack import EmbeddedStack


class SpecCache:
    """Pipeline specs loaded from a folder, reloaded when a file there changes."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._stamp: tuple[tuple[str, float], ...] | None = None
        self._specs: dict[str, PipelineSpec] = {}
        self._lock = threading.Lock()

    def __call__(self) -> Mapping[str, PipelineSpec]:
        stamp = tuple(sorted((p.name, p.stat().st_mtime) for p in self._dir.glob("*.y*ml")))
        with self._lock:
            if stamp != self._stamp:
                self._specs = load_specs(self._dir)
                self._stamp = stamp
            return self._specs


class App:
    """Services and adapters for one process, each built on first use."""

    def __init__(self, settings: Settings, overrides: Mapping[str, Any] | None = None) -> None:
        self.settings = settings
        self.__dict__.update(overrides or {})  # a fake given here wins over the cached_property below

    @cached_property
    def specs(self) -> SpecCache:
        return SpecCache(self.settings.pipelines_dir)

    @cached_property
    def store(self) -> Any:
        from relaunch.adapters.local.sqlite_store import SqliteRunStore

        return SqliteRunStore(self.settings.store_path)

    @cached_property
    def bus(self) -> Any:
        from relaunch.adapters.local.bus import SqliteBus

        return SqliteBus(self.settings.bus_path)

    @cached_property
    def backend(self) -> Any:
        from relaunch.adapters.local.agent import LocalAgent

        s = self.settings
        return LocalAgent(s.agent_path, s.logs_dir, max_concurrent=s.max_concurrent_jobs)

    @cached_property
    def registry(self) -> Any:
        from relaunch.adapters.local.registry import LocalRegistry

        return LocalRegistry(self.settings.registry_dir)

    @cached_property
    def endpoint(self) -> Any:
        from relaunch.adapters.local.endpoint import HttpEndpoint

        return HttpEndpoint(self.settings.endpoint_url)

    @cached_property
    def builder(self) -> Any:
        from relaunch.adapters.local.builder import GitCheckoutBuilder

        return GitCheckoutBuilder(self.settings.workspaces_dir)

    @cached_property
    def blobs(self) -> Any:
        from relaunch.adapters.local.blobs import LocalBlobStore

        return LocalBlobStore()

    @cached_property
    def notifier(self) -> Any:
        from relaunch.adapters.local.notifier import TimelineNotifier

        return TimelineNotifier(self.store)

    @cached_property
    def ingest(self) -> Any:
        from relaunch.pipelines.ingest import IngestService

        return IngestService(self.store, self.bus, self.specs)

    @cached_property
    def orchestrator(self) -> Any:
        from relaunch.pipelines.orchestrator import Deps, Orchestrator

        deps = Deps(
            store=self.store,
            builder=self.builder,
            backend=self.backend,
            blobs=self.blobs,
            registry=self.registry,
            endpoint=self.endpoint,
            notifier=self.notifier,
            specs=self.specs,
            artifact_root=str(self.settings.artifacts_dir.resolve()),
        )
        return Orchestrator(deps)


_app: App | None = None
_app_lock = threading.Lock()


def app() -> App:
    """This process's App, built from the environment on first call."""
    global _app
    with _app_lock:
        if _app is None:
            _app = App(Settings())
        return _app


def use(custom: App | None) -> None:
    """Install (or with None, forget) the process-wide App; for tests and the embedded stack."""
    global _app
    with _app_lock:
        _app = custom


def embedded_stack(settings: Settings) -> EmbeddedStack:
    """The embedded stack (functions, bus, agent, endpoint) for these settings, not yet started."""
    from relaunch.adapters.local.stack import EmbeddedStack

    return EmbeddedStack(settings)
