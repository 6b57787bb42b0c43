"""relaunch's W&B Launch queue, created or brought up to date (`relaunch launch-queue apply`) through the SDK's calls.

`wandb.Api().upsert_run_queue` creates a queue or replaces its default resource config; reading the queue first
(`Api.run_queue`: its metadata, then its resource config) makes a second apply of the same config change nothing.
Prioritization is turned on (`V0`): relaunch pushes each job with a priority, which W&B refuses on a queue without.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from relaunch.adapters.wandb import check_settings, make_api, translate_errors
from relaunch.adapters.wandb.launch import QUEUE_RESOURCE_TYPE

PRIORITIZATION = "V0"
Outcome = Literal["created", "updated", "unchanged"]


class LaunchQueue:
    """relaunch's Launch queue on W&B: created, or its Vertex resource config brought up to date."""

    def __init__(self, *, api_key: str, base_url: str, entity: str, name: str, api: Any | None = None) -> None:
        check_settings("LaunchQueue", entity=entity, queue=name)
        if api is None:
            check_settings("LaunchQueue", api_key=api_key, base_url=base_url)
        self.entity, self.name, self.base_url = entity, name, base_url
        self._api_key = api_key
        self._api = api

    def __repr__(self) -> str:  # never the key
        return f"LaunchQueue(base_url={self.base_url!r}, queue={self.entity}/{self.name!r})"

    def apply(self, config: dict[str, Any]) -> Outcome:
        """Create the queue with `config` as its Vertex resource config, or update it; idempotent."""
        if self._api is None:
            self._api = make_api(self._api_key, self.base_url)
        where = f"{self.entity}/{self.name}"
        with translate_errors(f"W&B Launch: read queue {where}"):
            current = _current(self._api, self.entity, self.name)
        wanted = (QUEUE_RESOURCE_TYPE, PRIORITIZATION, {"resource_args": {QUEUE_RESOURCE_TYPE: config}})
        if current == wanted:
            return "unchanged"
        with translate_errors(f"W&B Launch: apply queue {where}"):
            self._api.upsert_run_queue(
                self.name,
                resource_config=config,
                resource_type=QUEUE_RESOURCE_TYPE,
                entity=self.entity,
                prioritization_mode=PRIORITIZATION,
            )
        return "created" if current is None else "updated"


def _current(api: Any, entity: str, name: str) -> tuple[str | None, str, Any] | None:
    """The queue's resource type, prioritization and stored config, or None if there is no such queue."""
    queue = api.run_queue(entity, name)
    try:
        mode = queue.prioritization_mode  # the SDK's GetRunQueueMetadata
    except Exception as exc:
        if not _null_answer(exc):  # the SDK indexes into the null runQueue W&B answers for a missing queue
            raise
        return None
    try:
        kind, stored = queue.type, queue.default_resource_config  # the SDK's GetDefaultResourceConfig
    except Exception as exc:
        if not _null_answer(exc):  # a queue made in the UI without a resource config
            raise
        return None, mode, {}
    if isinstance(stored, str):
        stored = json.loads(stored or "{}")
    return kind, mode, stored


def _null_answer(exc: BaseException) -> bool:
    """True if the SDK failed reading a null W&B answered (it wraps that TypeError in a CommError's `exc`)."""
    inner = getattr(exc, "exc", None) or exc.__cause__
    return isinstance(exc, (TypeError, KeyError)) or isinstance(inner, (TypeError, KeyError))
