"""The rule both stores apply to content keys: of runs with one content key, the first written is the only one."""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence

from relaunch.domain.model import PipelineRun


def split_held(
    runs: Sequence[PipelineRun], holders: MutableMapping[str, str]
) -> tuple[dict[str, str], list[PipelineRun]]:
    """(new run -> the run holding its content, the runs to write), claiming in `holders` for the runs written."""
    held: dict[str, str] = {}
    fresh: list[PipelineRun] = []
    for run in runs:
        key = run.content_key
        if key and key in holders:
            held[run.id] = holders[key]
            continue
        if key:
            holders[key] = run.id
        fresh.append(run)
    return held, fresh
