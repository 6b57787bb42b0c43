"""What housekeeping may delete, decided from facts alone: run folders, inbox bodies, registered model versions.

The rules, and what they never touch:
- a run's folders (its checkout under workspaces/, its outputs under artifacts/runs/) are kept while the run is not
  terminal, and for the `workspaces` newest terminal runs; a folder whose run the store does not know is an orphan,
  deleted once it is older than `orphan_grace_s`. A terminal state is final, so a folder judged deletable stays so.
- an inbox row keeps its body for `body_days`, then keeps the row without it. A delivery kept for a replay (outcome
  `failed…`) keeps its body until it was replayed: the replay's own row then holds a copy. Dead letters are kept whole
  (they are rare, and the operator's evidence).
- a model version is kept if it is among the pipeline's `versions` newest, the champion, deployed on an endpoint,
  named by a run still in flight, or what `relaunch rollback` would put back.
- a commit's Python environment (the local build's) is kept while a kept checkout names it, and until it was last
  used `env_idle_days` ago: the next push of the same dependencies then costs nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from relaunch.domain.evaluator import SUFFIX as EVALUATOR_SUFFIX
from relaunch.domain.model import ModelVersion, PipelineRun, RunState

DAY_S = 86400.0
TRASH_PREFIX = ".gc-"  # a folder renamed for deletion: what an interrupted deletion leaves behind
FAILED_OUTCOME = "failed"  # the inbox outcome of a delivery kept for a replay (service.ingest.FAILED)


@dataclass(frozen=True)
class RetentionPolicy:
    """How much history to keep (RELAUNCH_RETAIN_*)."""

    workspaces: int = 20  # terminal runs whose checkout and outputs are kept, newest first
    body_days: float = 30.0  # inbox bodies older than this are dropped (the row stays)
    versions: int = 10  # newest versions of each pipeline kept whatever points at them (at least 1)
    orphan_grace_s: float = 3600.0  # a folder of no known run is left alone this long
    env_idle_days: float = 14.0  # a Python environment no kept checkout names goes after this long unused


@dataclass(frozen=True)
class RunFolder:
    """A folder on disk that belongs to a run (by its name), with what it weighs."""

    kind: Literal["workspace", "artifacts"]
    name: str
    size: int
    mtime: float


@dataclass(frozen=True)
class EnvFolder:
    """A commit's Python environment on disk: its hash, what it weighs, and when a build last used it."""

    name: str
    size: int
    last_used: float


@dataclass(frozen=True)
class StoredBody:
    """An inbox row still holding its body: what it weighs and how it ended, without the body itself."""

    key: str
    source: str
    received_at: float
    outcome: str
    size: int


@dataclass(frozen=True)
class Removal:
    """One thing housekeeping deletes (or would, in a dry run), and why."""

    kind: Literal["workspace", "artifacts", "body", "version", "environment"]
    name: str  # folder name, delivery key, or pipeline:version
    size: int
    reason: str


def run_of(folder: str) -> str | None:
    """The run a folder of workspaces/ or artifacts/runs/ belongs to; None for one that is no run's (.history).

    `<run>` and `<run>.evaluator` (its evaluator's checkout) are the run's; `.<run>.<random>` is an attempt of its
    build (the builder's temporary clone).
    """
    if folder.startswith("."):
        inner = folder[1:]
        return inner.rsplit(".", 1)[0] if "." in inner and not folder.startswith(TRASH_PREFIX) else None
    return folder.removesuffix(EVALUATOR_SUFFIX)


def kept_runs(policy: RetentionPolicy, runs: Iterable[PipelineRun]) -> set[str]:
    """The runs whose folders stay: every run in flight, and the newest `policy.workspaces` terminal ones."""
    runs = list(runs)
    ended = sorted((r for r in runs if r.state.terminal), key=lambda r: (r.created_at, r.id), reverse=True)
    return {r.id for r in runs if not r.state.terminal} | {r.id for r in ended[: max(policy.workspaces, 0)]}


def folders_to_delete(
    policy: RetentionPolicy, folders: Sequence[RunFolder], runs: Mapping[str, PipelineRun], now: float
) -> list[Removal]:
    """The run folders to delete; `runs` holds every known run any folder names (a missing id: no such run)."""
    keep = kept_runs(policy, runs.values())
    removals = []
    for folder in folders:
        if folder.name.startswith(TRASH_PREFIX):
            removals.append(Removal(folder.kind, folder.name, folder.size, "left by an interrupted deletion"))
            continue
        run_id = run_of(folder.name)
        if run_id is None or run_id in keep:
            continue
        run = runs.get(run_id)
        if run is not None:
            why = f"run {run.state.value}, not among the last {policy.workspaces} finished runs"
        elif now - folder.mtime >= policy.orphan_grace_s:
            why = "no such run in the store"
        else:
            continue
        removals.append(Removal(folder.kind, folder.name, folder.size, why))
    return removals


def environments_to_delete(
    policy: RetentionPolicy, envs: Iterable[EnvFolder], named: Collection[str], now: float
) -> list[Removal]:
    """The environments to delete: named by no checkout that stays, and unused for `policy.env_idle_days`."""
    idle_since = now - policy.env_idle_days * DAY_S
    days = f"{policy.env_idle_days:g}"
    return [
        Removal("environment", env.name, env.size, f"no kept checkout uses it, unused for over {days} days")
        for env in envs
        if env.name not in named and env.last_used <= idle_since
    ]


def may_delete_folder(policy: RetentionPolicy, name: str, run: PipelineRun | None, mtime: float, now: float) -> bool:
    """The check right before deleting one folder: its run (read again) ended, or is unknown and the folder old."""
    if name.startswith(TRASH_PREFIX):
        return True
    if run is not None:
        return run.state.terminal
    return now - mtime >= policy.orphan_grace_s


def bodies_to_drop(
    policy: RetentionPolicy, bodies: Iterable[StoredBody], replayed: Collection[str], now: float
) -> list[Removal]:
    """The inbox bodies to drop: older than the policy's days, unless kept for a replay not yet made."""
    cutoff = now - policy.body_days * DAY_S
    removals = []
    for body in bodies:
        if body.received_at >= cutoff or body.size == 0:
            continue
        if body.outcome.startswith(FAILED_OUTCOME) and body.key not in replayed:
            continue
        days = int(policy.body_days)
        removals.append(Removal("body", body.key, body.size, f"received over {days} days ago ({body.source})"))
    return removals


def rollback_target(runs: Iterable[PipelineRun]) -> str | None:
    """The version `relaunch rollback` would put back: the one serving before the newest promotion."""
    promoted = [r for r in runs if r.state is RunState.PROMOTED and r.rollout is not None]
    newest = max(promoted, key=lambda r: (r.created_at, r.id), default=None)
    return newest.rollout.previous_version if newest is not None and newest.rollout is not None else None


def pinned_versions(
    champion: str | None, serving: Iterable[str], in_flight: Iterable[PipelineRun], rollback: str | None
) -> dict[str, str]:
    """Versions of one pipeline that must stay, each with the reason."""
    pins: dict[str, str] = {}
    for run in in_flight:
        for version in (run.model_version, *(() if run.rollout is None else (run.rollout.new_version,))):
            if version:
                pins[version] = f"named by run {run.id}, still {run.state.value}"
    if rollback:
        pins[rollback] = "what `relaunch rollback` would put back"
    for version in serving:
        pins[version] = "deployed on the endpoint"
    if champion:
        pins[champion] = "the champion"
    return pins


def versions_to_delete(
    policy: RetentionPolicy, versions: Sequence[ModelVersion], pins: Mapping[str, str]
) -> list[Removal]:
    """One pipeline's versions to delete: all but the newest `policy.versions` (at least one) and the pinned."""
    newest_first = sorted(versions, key=lambda v: (v.created_at, _number(v.version)), reverse=True)
    old = newest_first[max(policy.versions, 1) :]
    return [
        Removal("version", f"{v.pipeline}:{v.version}", 0, f"not among the {max(policy.versions, 1)} newest")
        for v in old
        if v.version not in pins
    ]


def _number(version: str) -> int:
    digits = version.removeprefix("v")
    return int(digits) if digits.isdigit() else -1


def freed(removals: Iterable[Removal]) -> int:
    """Bytes the removals free."""
    return sum(r.size for r in removals)
