"""Housekeeping wired from an App: which folders hold run files, which registry can prune, what each endpoint serves.

Shared by `relaunch gc` and the reconcile function (neither may build adapters itself: they go through bootstrap).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from relaunch.bootstrap import App
from relaunch.domain.ports import VersionPruning
from relaunch.domain.retention import RetentionPolicy
from relaunch.service.gc import Housekeeping, Pipeline
from relaunch.settings import Settings


def policy(settings: Settings) -> RetentionPolicy:
    """The retention policy the RELAUNCH_RETAIN_* settings describe."""
    return RetentionPolicy(
        workspaces=settings.retain_workspaces,
        body_days=settings.retain_body_days,
        versions=settings.retain_versions,
        env_idle_days=settings.retain_env_days,
    )


def housekeeping(app: App) -> Housekeeping:
    """Housekeeping over the app's store, its local run folders and (the local registry) its model versions."""
    s = app.settings
    folders: dict[Literal["workspace", "artifacts"], Path] = {}
    if s.adapter("builder") == "local":
        folders["workspace"] = s.workspaces_dir
    if not app.artifact_root.startswith("gs://"):
        folders["artifacts"] = Path(app.artifact_root) / "runs"
    registry = app.registry if isinstance(app.registry, VersionPruning) else None  # the local one; Vertex's: later
    return Housekeeping(
        app.store,
        policy(s),
        folders=folders,
        registry=registry,
        environments=app.prunable_environments(),
        pipelines=lambda: _pipelines(app),
    )


def on_reconcile(app: App) -> Callable[[float], str | None]:
    """What reconcile calls on every tick: a pass once per RELAUNCH_RETAIN_GC_INTERVAL_S, summed up in one line."""

    def keep_house(budget_s: float) -> str | None:
        report = housekeeping(app).maybe_collect(app.settings.retain_gc_interval_s, budget_s)
        return None if report is None else report.summary()

    return keep_house


def _pipelines(app: App) -> Sequence[Pipeline]:
    return [Pipeline(name, _serving(app, spec.endpoint)) for name, spec in sorted(app.specs().items())]


def _serving(app: App, endpoint: str) -> Callable[[], set[str]]:
    """What the endpoint serves: the local one's state file (every change is written there, stack up or not), else
    the endpoint's traffic split."""

    def local() -> set[str]:
        from relaunch.adapters.local.endpoint_state import ServingState

        state = ServingState(app.settings.endpoint_state_path, registry_dir=app.settings.registry_dir)
        if endpoint not in state.names():
            return set()
        described = state.describe(endpoint)
        return {str(d["version"]) for d in described["deployed"]} | set(described["split"])

    if app.settings.adapter("endpoint") == "local":
        return local
    return lambda: set(app.endpoint.traffic(endpoint))
