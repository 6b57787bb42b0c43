"""Housekeeping: apply the retention policy (domain/retention.py) to run folders, inbox bodies, model versions and
the local build's Python environments.

Deleting is idempotent and safe beside running work: a folder's run is read again right before the folder goes
(a terminal state is final, and a run that starts during a pass has an id no listed folder bears); a folder is
renamed aside before it is removed, so no reader ever sees half of one, and the next pass finishes what a crash left.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from relaunch.domain import retention
from relaunch.domain.ports import EnvironmentPruning, RunStore, VersionPruning
from relaunch.domain.retention import Removal, RetentionPolicy, RunFolder

log = logging.getLogger(__name__)
DROP_BATCH = 500  # keys per drop_bodies call: well under SQLite's limit of bound values
LAST_PASS_LANE = "#relaunch-gc"  # a lane no pipeline can name (pipeline names start with a letter or digit)


@dataclass(frozen=True)
class Pipeline:
    """What housekeeping needs of one pipeline: its name, and the versions its endpoint serves now."""

    name: str
    serving: Callable[[], set[str]]  # raises when the endpoint cannot be asked: its versions are then all kept


@dataclass
class GcReport:
    """What a pass deleted (or would delete, in a dry run), what it could not, and the bytes freed."""

    dry_run: bool
    removals: list[Removal] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # kept on purpose although old, and why
    errors: list[str] = field(default_factory=list)  # parts that could not be judged now (the next pass tries again)

    @property
    def freed(self) -> int:
        return retention.freed(self.removals)

    def summary(self) -> str:
        """One line for a log: counts by kind, bytes freed, and any part that failed."""
        kinds = sorted({r.kind for r in self.removals})
        counts = ", ".join(f"{sum(r.kind == kind for r in self.removals)} {kind}" for kind in kinds) or "nothing"
        errors = f"; errors: {' | '.join(self.errors)}" if self.errors else ""
        return f"{'would delete' if self.dry_run else 'deleted'} {counts} ({human_bytes(self.freed)}){errors}"


class Housekeeping:
    """One pass of the retention policy over the store, the run folders and the registry."""

    def __init__(
        self,
        store: RunStore,
        policy: RetentionPolicy,
        *,
        folders: Mapping[Literal["workspace", "artifacts"], Path] = {},
        registry: VersionPruning | None = None,
        environments: EnvironmentPruning | None = None,
        pipelines: Callable[[], Sequence[Pipeline]] = list,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.policy, self.folders, self.registry = store, policy, dict(folders), registry
        self.environments = environments
        self.pipelines, self.clock = pipelines, clock
        self._deadline: float | None = None

    def maybe_collect(self, interval_s: float, budget_s: float) -> GcReport | None:
        """A pass if none ran in the last `interval_s` (0: never); reconcile calls this on every tick."""
        return self.collect(budget_s=budget_s) if interval_s > 0 and self.due(interval_s) else None

    def collect(self, *, dry_run: bool = False, budget_s: float | None = None) -> GcReport:
        """Plan and (unless `dry_run`) delete; one part's trouble never stops the others.

        With `budget_s`, no further folder is deleted once it is spent (the next pass goes on where this one
        stopped): a first pass over a long-lived home may have thousands of checkouts to remove.
        """
        report = GcReport(dry_run=dry_run)
        self._deadline = None if budget_s is None else self.clock() + budget_s
        for part in (self._folders, self._environments, self._bodies, self._versions):  # checkouts before their envs
            try:
                part(report)
            except Exception as exc:  # noqa: BLE001 (a dependency down: the next pass tries again)
                report.errors.append(f"{part.__name__.strip('_')}: {type(exc).__name__}: {exc}")
        return report

    def due(self, interval_s: float) -> bool:
        """Claim this interval's pass (compare-and-set in the store: one pass per interval, whatever the instances).

        The last pass's time is kept as the head of a reserved lane, the store's one atomic register.
        """
        now = self.clock()
        last = self.store.lane_head(LAST_PASS_LANE)
        try:
            if last is not None and now - float(last) < interval_s:
                return False
        except ValueError:
            pass  # not a time: claim it over
        return self.store.take_lane(LAST_PASS_LANE, last, repr(now))

    # -- run folders ------------------------------------------------------------------------------------------

    def _folders(self, report: GcReport) -> None:
        now = self.clock()
        found = [folder for kind, root in self.folders.items() for folder in _run_folders(kind, root)]
        ids = {run_id for f in found if (run_id := retention.run_of(f.name)) is not None}
        runs = {run.id: run for run_id in sorted(ids) if (run := self.store.get_run(run_id)) is not None}
        by_place: dict[tuple[str, str], RunFolder] = {(f.kind, f.name): f for f in found}
        for removal in retention.folders_to_delete(self.policy, found, runs, now):
            if not report.dry_run and self._deadline is not None and self.clock() >= self._deadline:
                report.kept.append(f"{removal.kind}: out of time, the next pass goes on")
                break
            folder = by_place[(removal.kind, removal.name)]
            if report.dry_run or self._delete_folder(self.folders[folder.kind], folder.name, folder.mtime):
                report.removals.append(removal)
            else:
                report.kept.append(f"{removal.kind} {removal.name}: its run is in flight now")

    def _delete_folder(self, root: Path, name: str, mtime: float) -> bool:
        """Delete one folder if the check holds with the run read again now; True once it is gone."""
        run_id = retention.run_of(name)
        run = self.store.get_run(run_id) if run_id is not None else None
        if not retention.may_delete_folder(self.policy, name, run, mtime, self.clock()):
            return False
        path = trash = root / name
        if not name.startswith(retention.TRASH_PREFIX):
            trash = root / f"{retention.TRASH_PREFIX}{uuid.uuid4().hex}"
            try:
                path.rename(trash)  # atomic: the folder is whole or gone, never half
            except FileNotFoundError:
                return True  # another pass took it first
        shutil.rmtree(trash, ignore_errors=True)
        return True

    # -- the local build's Python environments ---------------------------------------------------------------

    def _environments(self, report: GcReport) -> None:
        if self.environments is None:
            return
        gone = {r.name for r in report.removals if r.kind == "workspace"}  # in a dry run too: as if deleted
        named = {env for checkout, env in self.environments.named_by_checkouts().items() if checkout not in gone}
        named |= self._served_environments()  # a registered version is served (or rolled back to) in its own
        now = self.clock()
        for removal in retention.environments_to_delete(self.policy, self.environments.environments(), named, now):
            idle_since = now - self.policy.env_idle_days * retention.DAY_S
            if report.dry_run or self.environments.delete_idle(removal.name, idle_since):
                report.removals.append(removal)
            else:
                report.kept.append(f"environment {removal.name}: a build used it just now")

    def _served_environments(self) -> set[str]:
        """The environments registered versions were trained in: the local endpoint serves each version in its own."""
        if self.registry is None:
            return set()
        return {
            env
            for pipeline in self.pipelines()
            for version in self.registry.list_versions(pipeline.name)
            if (env := version.metadata.get("python_environment"))
        }

    # -- inbox bodies -----------------------------------------------------------------------------------------

    def _bodies(self, report: GcReport) -> None:
        now = self.clock()
        before = now - self.policy.body_days * retention.DAY_S
        stored = self.store.stored_bodies(before)
        failed = [b.key for b in stored if b.outcome.startswith(retention.FAILED_OUTCOME)]
        replayed = {key for key in failed if self._was_replayed(key)}
        removals = retention.bodies_to_drop(self.policy, stored, replayed, now)
        if not report.dry_run:
            keys = [r.name for r in removals]
            for start in range(0, len(keys), DROP_BATCH):
                self.store.drop_bodies(keys[start : start + DROP_BATCH], before)
        report.removals += removals
        if kept := len(failed) - len(replayed):
            report.kept.append(f"body: {kept} failed deliveries keep theirs until replayed (relaunch replay KEY)")

    def _was_replayed(self, key: str) -> bool:
        from relaunch.domain.effects import replay_delivery

        return self.store.get_delivery(replay_delivery(key, 1)) is not None

    # -- model versions ---------------------------------------------------------------------------------------

    def _versions(self, report: GcReport) -> None:
        if self.registry is None:
            report.kept.append("version: this registry's versions are not collected")
            return
        for pipeline in self.pipelines():
            try:
                serving = pipeline.serving()
            except Exception as exc:  # noqa: BLE001 (no answer: keep every version rather than guess)
                report.errors.append(f"versions of {pipeline.name} kept whole: its endpoint cannot be asked ({exc})")
                continue
            self._prune(pipeline.name, serving, report)

    def _prune(self, pipeline: str, serving: set[str], report: GcReport) -> None:
        assert self.registry is not None
        runs = self.store.list_runs(pipeline=pipeline, limit=200)
        found = self.registry.champion(pipeline)
        champion = found.version if found is not None else None
        pins = retention.pinned_versions(
            champion, serving, self.store.active_runs(pipeline), retention.rollback_target(runs)
        )
        versions = self.registry.list_versions(pipeline)
        where = {v.version: v.artifact_uri for v in versions}
        for removal in retention.versions_to_delete(self.policy, versions, pins):
            version = removal.name.split(":", 1)[1]
            sized = Removal(removal.kind, removal.name, _size(Path(where[version])), removal.reason)
            if not report.dry_run:
                try:
                    self.registry.delete_version(pipeline, version)
                except ValueError as exc:  # it became the champion since the plan
                    report.kept.append(f"version {removal.name}: {exc}")
                    continue
            report.removals.append(sized)


def _run_folders(kind: Literal["workspace", "artifacts"], root: Path) -> Iterable[RunFolder]:
    """The folders directly under `root`, each with its size on disk and last change."""
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return []
    return [
        RunFolder(kind, e.name, _size(Path(e.path)), e.stat(follow_symlinks=False).st_mtime)
        for e in entries
        if e.is_dir(follow_symlinks=False)
    ]


def _size(path: Path) -> int:
    """Bytes of the files under `path` (links not followed); 0 for what is gone or not local."""
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total


def human_bytes(size: int) -> str:
    """Bytes in the unit that fits them."""
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
