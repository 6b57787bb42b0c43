"""The smoke test of a blue-green rollout: which instances to predict, and whether the answer passes. Pure."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from relaunch.domain.rollout import BlueGreenRollout


def smoke_instances(strategy: BlueGreenRollout, read_text: Callable[[str], str]) -> list[Any]:
    """The smoke instances: inline, or read from the repo file through `read_text(relative_path)`.

    The file holds a JSON list of instances or a Vertex predict body `{"instances": [...]}`.
    """
    if isinstance(strategy.smoke, list):
        return list(strategy.smoke)
    try:
        loaded = json.loads(read_text(strategy.smoke))
    except ValueError as exc:
        raise ValueError(f"rollout.smoke: {strategy.smoke} is not valid JSON: {exc}") from None
    instances = loaded.get("instances") if isinstance(loaded, dict) else loaded
    if not isinstance(instances, list) or not instances:
        raise ValueError(f"rollout.smoke: {strategy.smoke} must hold a non-empty list of instances")
    return instances


def smoke_verdict(sent: int, answer: Mapping[str, Any] | None, error: str | None = None) -> tuple[bool, str]:
    """Whether a smoke test passed: no error, one prediction per instance."""
    if error is not None:
        return False, f"prediction failed: {error}"
    predictions = (answer or {}).get("predictions")
    if not isinstance(predictions, list) or len(predictions) != sent:
        count = len(predictions) if isinstance(predictions, list) else "no"
        return False, f"{count} predictions for {sent} instances"
    return True, f"{sent} instances predicted"
