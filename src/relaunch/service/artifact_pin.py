"""Which W&B artifact version a run evaluates and promotes: the one its event routed on, resolved and pinned once.

A W&B run's trigger names entity/project/collection:version-or-alias, which the parser checked against the event's
routing fields. The fetch resolves an alias exactly once. What it returns must be a concrete version of that same
collection: the very version, when the trigger named one; the version whose id the event sent, when it sent one.
The run then records that version in its trigger, so the evaluation, the reports and the promote alias use it and
never resolve the alias again (an alias moved meanwhile cannot put `production` on a version nobody evaluated).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from relaunch.domain.effects import Effect, alias_moved
from relaunch.domain.environments import record_key
from relaunch.domain.model import PipelineRun, RunState, TimelineEntry
from relaunch.domain.ports import ArtifactSource, FetchedArtifact, StepStore
from relaunch.domain.spec import PipelineSpec
from relaunch.triggers.wandb import ARTIFACT_PATTERN, artifact_id_of, is_concrete


class AliasSetter(Protocol):
    """What moving an alias needs of an artifact source (ArtifactSource, or the W&B a run's jobs were synced to)."""

    def set_alias(self, ref: str, alias: str) -> None: ...


@dataclass(frozen=True)
class ArtifactName:
    """entity/project/collection:version, split."""

    entity: str
    project: str
    collection: str
    version: str

    @property
    def collection_path(self) -> str:
        """entity/project/collection."""
        return f"{self.entity}/{self.project}/{self.collection}"


def artifact_name(ref: str) -> ArtifactName:
    """The parts of an artifact ref; ValueError if it is not entity/project/collection:version."""
    match = ARTIFACT_PATTERN.match(ref or "")
    if match is None:
        raise ValueError(f"{ref[:120]!r} is not entity/project/collection:version")
    return ArtifactName(*match.groups())


def is_pinned(ref: str) -> bool:
    """Whether `ref` names one concrete version (entity/project/collection:vN), not an alias that can move."""
    match = ARTIFACT_PATTERN.match(ref or "")
    return match is not None and is_concrete(match[4])


def pinned_version(routed: str, artifact_ref: str | None, fetched: FetchedArtifact) -> str:
    """The concrete version to evaluate and promote: `fetched.ref` if it is what was routed, else a ValueError why."""
    want, got = artifact_name(routed), artifact_name(fetched.ref)
    if got.collection_path != want.collection_path:
        raise ValueError(f"the artifact source returned {fetched.ref}, not a version of {want.collection_path}")
    if not is_concrete(got.version):
        raise ValueError(f"the artifact source returned {fetched.ref}, which names no concrete version")
    if is_concrete(want.version) and got.version != want.version:
        raise ValueError(f"the artifact source returned {fetched.ref} when asked for {routed}")
    expected = artifact_id_of(artifact_ref)
    if expected is not None and (fetched.artifact_id or "").rstrip("=") != expected.rstrip("="):
        raise ValueError(
            f"{routed} now resolves to {fetched.ref} (id {fetched.artifact_id}), not to the version the event named "
            f"(id {expected}): the alias moved after the event, and the event of that move starts its own run"
        )
    return fetched.ref


def fetch_pinned(store: StepStore, source: ArtifactSource, run: PipelineRun, dest: str) -> PipelineRun:
    """Fetch the run's artifact to `dest` once and pin the run to the version fetched; ValueError if refused."""
    routed = run.trigger.artifact
    if routed is None:
        raise ValueError("the run names no artifact")
    if store.get_effect(run.id, Effect.FETCH) is not None:
        return run  # pinned before the effect was recorded: the trigger already names the concrete version
    fetched = source.fetch(routed, dest)
    try:
        ref = pinned_version(routed, run.trigger.artifact_ref, fetched)
    except ValueError as exc:
        raise ValueError(f"refused what the fetch of {routed} returned: {exc}") from exc
    resolved = "" if ref == routed else f" ({routed} resolved once; every later step uses {ref})"
    data = {"artifact": ref, "routed": routed, "artifact_id": fetched.artifact_id}
    note = TimelineEntry(
        kind="info", message=f"fetched {ref}{resolved}", data={**data, "reported_metrics": fetched.reported_metrics}
    )
    pinned = run.model_copy(update={"trigger": run.trigger.model_copy(update={"artifact": ref})})
    saved = store.save_run(pinned, [note])  # before the effect: a re-run after a crash re-fetches the pinned version
    store.put_effect(run.id, Effect.FETCH, data)
    return saved


def move_alias(store: StepStore, artifacts: Callable[[], AliasSetter], run: PipelineRun, alias: str) -> None:
    """Point `alias` at the run's pinned W&B version, once; a refusal is noted once, and never un-promotes."""
    artifact, step = run.trigger.artifact, alias_moved(alias)
    if not artifact or store.get_effect(run.id, step) is not None:
        return
    if not is_pinned(artifact):  # re-resolving an alias could promote an unevaluated version
        _refused(store, run.id, f"{artifact} names no concrete version (the run was never pinned)")
        return
    try:
        artifacts().set_alias(artifact, alias)  # TransientError propagates: retried
    except ValueError as exc:
        store.put_effect(run.id, step, {"refused": str(exc)})
        store.append_timeline(run.id, TimelineEntry(kind="warning", message=f"alias not moved: {exc}"))
        return
    store.append_timeline(run.id, TimelineEntry(kind="info", message=f"W&B alias {alias} -> {artifact}"))
    store.put_effect(run.id, step, {"artifact": artifact})


def move_aliases(
    store: StepStore, artifacts: Callable[[], AliasSetter], run: PipelineRun, spec: PipelineSpec, promote_alias: str
) -> None:
    """W&B's registry follows the run: each environment it entered gets that environment's alias (`staging`,
    `production`) on the run's pinned version, and a promoted run the promote alias; each alias once."""
    if not run.trigger.artifact:
        return
    entered = [e.name for e in spec.environments if store.get_effect(run.id, record_key(e.name)) is not None]
    promoted = [promote_alias] if run.state is RunState.PROMOTED else []
    for alias in dict.fromkeys([*entered, *promoted]):
        move_alias(store, artifacts, run, alias)


def _refused(store: StepStore, run_id: str, why: str) -> None:
    """Say once that no alias moves for this run (its artifact names no concrete version)."""
    if store.get_effect(run_id, Effect.ALIAS_REFUSED) is None:
        store.append_timeline(run_id, TimelineEntry(kind="warning", message=f"alias not moved: {why}"))
        store.put_effect(run_id, Effect.ALIAS_REFUSED, {"why": why})
