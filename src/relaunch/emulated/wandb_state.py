"""What the W&B stand-in holds (queue items, runs, artifact versions, every call) and its operations' registry.

The GraphQL operations (wandb_queues.py, wandb_artifacts.py) register here by name; relaunch.emulated.wandb serves
them.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

NOW = "2026-01-01T00:00:00"


@dataclass
class Call:
    """One GraphQL operation as received."""

    operation: str
    query: str
    variables: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeArtifact:
    """An artifact version: its files, metadata, aliases and the run that logged it."""

    entity: str
    project: str
    collection: str
    version: int
    files: dict[str, bytes]
    metadata: dict[str, Any] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    type: str = "model"
    created_by: str | None = None  # run name in the same project
    digest: str | None = None  # the manifest digest the SDK sent (wandb_uploads.py); None: one made from the files
    state: str = "COMMITTED"  # PENDING from createArtifact until commitArtifact

    @property
    def id(self) -> str:
        return base64.b64encode(f"Artifact:{self.collection}:{self.version}".encode()).decode()


@dataclass
class WandbState:
    """Queue items, runs and artifacts of one W&B entity, plus everything the SDK asked and what was refused."""

    url: str = ""
    api_key: str = ""
    calls: list[Call] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    artifacts: list[FakeArtifact] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # requests answered with a GraphQL error for their document
    queues: set[tuple[str, str]] = field(default_factory=set)  # (entity, name) of the Launch queues that exist
    queue_configs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # what upsertRunQueue set
    projects: set[tuple[str, str]] = field(default_factory=set)  # (entity, name) created through the API
    sweeps: dict[str, dict[str, Any]] = field(default_factory=dict)  # by sweep name (wandb_sweeps.py)
    synced: dict[str, dict[str, Any]] = field(default_factory=dict)  # by run name: what a sync sent (wandb_uploads)
    lock: threading.RLock = field(default_factory=threading.RLock)

    # -- what tests read ---------------------------------------------------------------------------------------

    def operations(self) -> list[str]:
        return [c.operation for c in self.calls]

    def called(self, operation: str) -> list[Call]:
        return [c for c in self.calls if c.operation == operation]

    # -- what tests set up --------------------------------------------------------------------------------------

    def add_run(self, name: str, state: str, summary: dict[str, Any] | None = None, **attrs: Any) -> None:
        """A run in the project (storage id `Run:<name>`)."""
        with self.lock:
            self.runs[name] = {
                "id": base64.b64encode(f"Run:{name}".encode()).decode(),
                "name": name,
                "state": state,
                "summaryMetrics": json.dumps(summary or {}),
                "createdAt": attrs.pop("createdAt", NOW),
                "heartbeatAt": attrs.pop("heartbeatAt", NOW),
                **attrs,
            }

    def claim(self, item_id: str, run_name: str, run_state: str = "running") -> None:
        """What a launch agent does: claim the item and start its run."""
        with self.lock:
            self.items[item_id].update(state="CLAIMED", associatedRunId=run_name)
            self.add_run(run_name, run_state)

    # -- HTTP --------------------------------------------------------------------------------------------------

    def artifact_named(self, entity: str, project: str, name: str) -> FakeArtifact:
        collection, _, alias = name.partition(":")
        for artifact in self.artifacts:
            same = (artifact.entity, artifact.project, artifact.collection) == (entity, project, collection)
            if same and (alias == f"v{artifact.version}" or alias in artifact.aliases):
                return artifact
        raise LookupError(f"artifact {entity}/{project}/{name} not found")

    def artifact_by_id(self, artifact_id: str) -> FakeArtifact:
        for artifact in self.artifacts:
            if artifact.id == artifact_id:
                return artifact
        raise LookupError(f"artifact {artifact_id} not found")


Handler = Callable[[WandbState, dict[str, Any]], dict[str, Any]]
HANDLERS: dict[str, Handler] = {}


def operation(*names: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the answer to the GraphQL operations `names`."""

    def register(fn: Handler) -> Handler:
        for name in names:
            HANDLERS[name] = fn
        return fn

    return register
