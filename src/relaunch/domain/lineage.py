"""Lineage: from a model being served back to the commit, the data and the run that made it; from a commit forward
to every model it produced, and where each is served now. Pure: a walk over runs and promotion records.

What an environment serves is its newest promotion record. After a rollback that record names the run it undid, so a
version is traced to the run whose *promotion* record names it (the run that made it), else to the run that
registered it (`model_version`), never to a rollback.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from relaunch.domain.environments import PromotionRecord
from relaunch.domain.model import PipelineRun

_COMMIT = re.compile(r"[0-9a-f]{7,40}")
_SHOWN = 40  # of a name from the command line, in a message


@dataclass(frozen=True)
class Origin:
    """Where one run's model came from and where it is now: `version` None when the run made no model."""

    pipeline: str
    version: str | None
    run_id: str
    state: str
    commit: str | None
    ref: str | None
    repo: str | None
    trigger: str
    data_version: str | None  # what the training job recorded it learned from (None: not recorded)
    artifact: str | None  # the W&B artifact version the run evaluated, when a W&B event started it
    served_in: tuple[str, ...]  # environments serving `version` now


def serving_now(records: Iterable[PromotionRecord]) -> dict[str, str]:
    """Environment -> the version it serves: its newest record (`records` newest first, as the history lists them)."""
    serving: dict[str, str] = {}
    for record in records:
        serving.setdefault(record.environment, record.version)
    return serving


def back(
    pipeline: str,
    target: str,
    runs: Sequence[PipelineRun],
    records: Sequence[PromotionRecord],
    data_versions: Mapping[str, str],
) -> Origin:
    """The origin of what environment `target` serves, or of version `target`; ValueError (one line) if none."""
    serving = serving_now(records)
    version = serving.get(target) or next((v for v in _versions(runs, records) if v == target), None)
    if version is None:
        raise ValueError(f"no environment or version {target[:_SHOWN]!r} of {pipeline}")
    promoted = next((r for r in records if r.kind == "promoted" and r.version == version), None)
    made_by = promoted.run_id if promoted else next((r.id for r in runs if r.model_version == version), None)
    run = next((r for r in runs if r.id == made_by), None)
    if run is None:
        raise ValueError(f"{version} of {pipeline} was made by run {made_by}, which the store no longer has")
    return _origin(run, serving, data_versions)


def forward(
    commit: str, runs: Sequence[PipelineRun], records: Sequence[PromotionRecord], data_versions: Mapping[str, str]
) -> list[Origin]:
    """Every run of `commit` (a full SHA or a prefix of 7 or more), oldest first, with its model and where it serves;
    ValueError when the commit is malformed or its prefix begins more than one commit."""
    if not _COMMIT.fullmatch(commit):
        raise ValueError(f"commit must be 7 to 40 lower-case hex digits, got {commit[:_SHOWN]!r}")
    mine = [r for r in runs if r.trigger.sha and r.trigger.sha.startswith(commit)]
    commits = {r.trigger.sha for r in mine}
    if len(commits) > 1:
        raise ValueError(f"commit {commit} is ambiguous: it begins {len(commits)} commits; give more digits")
    serving: dict[str, dict[str, str]] = {}
    for pipeline in {r.pipeline for r in mine}:
        serving[pipeline] = serving_now(r for r in records if r.pipeline == pipeline)
    return [_origin(r, serving[r.pipeline], data_versions) for r in sorted(mine, key=lambda r: (r.created_at, r.id))]


def _versions(runs: Sequence[PipelineRun], records: Sequence[PromotionRecord]) -> list[str]:
    return [*(r.model_version for r in runs if r.model_version), *(r.version for r in records)]


def _origin(run: PipelineRun, serving: Mapping[str, str], data_versions: Mapping[str, str]) -> Origin:
    t, version = run.trigger, run.model_version
    return Origin(
        pipeline=run.pipeline,
        version=version,
        run_id=run.id,
        state=run.state.value,
        commit=t.sha,
        ref=t.ref,
        repo=t.repo,
        trigger=t.kind,
        data_version=data_versions.get(run.id),
        artifact=t.artifact,
        served_in=tuple(env for env, served in serving.items() if version is not None and served == version),
    )
