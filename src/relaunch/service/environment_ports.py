"""Ports as one environment's rollout sees them: its own effect keys, and its own registry alias.

The rollout step keys its effects by (run, action): a run climbing staging then production deploys v2 twice, to two
endpoints, so each environment's keys are scoped (`env:<name>:…`). And its promote moves "the champion": in an
environment that is that environment's alias, and the champion as well in the last one, which the gate compares with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from relaunch.domain.model import ModelVersion, PipelineRun, TimelineEntry
from relaunch.domain.ports import EnvironmentAliases, ModelRegistry, StepStore


class ScopedStore:
    """A StepStore whose effect-ledger steps carry a prefix; runs and timelines are the store's own."""

    def __init__(self, store: StepStore, scope: str) -> None:
        self.store, self.scope = store, scope

    def get_effect(self, run_id: str, step: str) -> dict[str, Any] | None:
        return self.store.get_effect(run_id, f"{self.scope}:{step}")

    def put_effect(self, run_id: str, step: str, result: dict[str, Any]) -> None:
        self.store.put_effect(run_id, f"{self.scope}:{step}", result)

    def list_effects(self, step: str) -> list[dict[str, Any]]:
        return self.store.list_effects(f"{self.scope}:{step}")

    def get_run(self, run_id: str) -> PipelineRun | None:
        return self.store.get_run(run_id)

    def save_run(self, run: PipelineRun, entries: Sequence[TimelineEntry] = ()) -> PipelineRun:
        return self.store.save_run(run, entries)

    def list_runs(self, pipeline: str | None = None, limit: int = 50, before: str | None = None) -> list[PipelineRun]:
        return self.store.list_runs(pipeline, limit, before)

    def active_runs(self, pipeline: str) -> list[PipelineRun]:
        return self.store.active_runs(pipeline)

    def runs_since(self, pipeline: str, since: float) -> list[PipelineRun]:
        return self.store.runs_since(pipeline, since)

    def timeline(self, run_id: str) -> list[TimelineEntry]:
        return self.store.timeline(run_id)

    def append_timeline(self, run_id: str, entry: TimelineEntry) -> None:
        self.store.append_timeline(run_id, entry)


class EnvironmentRegistry:
    """A ModelRegistry whose `set_champion` moves the environment's alias (and the champion, in the last one).

    `champion` stays the pipeline's champion: the one the candidate was evaluated against, which the rollout checks.
    """

    def __init__(self, registry: ModelRegistry, aliases: EnvironmentAliases, name: str, *, final: bool) -> None:
        self.registry, self.aliases, self.name, self.final = registry, aliases, name, final

    def register(
        self,
        pipeline: str,
        run_id: str,
        artifact_uri: str,
        metrics: dict[str, float],
        metadata: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        return self.registry.register(pipeline, run_id, artifact_uri, metrics, metadata)

    def content_digest(self, artifact_uri: str) -> str | None:
        return self.registry.content_digest(artifact_uri)

    def champion(self, pipeline: str) -> ModelVersion | None:
        return self.registry.champion(pipeline)

    def set_champion(self, pipeline: str, version: str) -> None:
        self.aliases.set_alias(pipeline, self.name, version)
        if self.final:
            self.registry.set_champion(pipeline, version)

    def get(self, pipeline: str, version: str) -> ModelVersion | None:
        return self.registry.get(pipeline, version)
