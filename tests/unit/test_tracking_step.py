"""A pipeline that tracks `online` has its jobs' offline W&B runs uploaded by relaunch after the evaluation, once;
promotion then aliases the model version they logged; a failed upload never fails the run."""

from __future__ import annotations

from pathlib import Path

from relaunch.config_files import load_spec
from relaunch.domain.commands import JobFinished
from relaunch.domain.model import RunState
from relaunch.domain.ports import TransientError
from relaunch.domain.spec_tracking import TrackingSpec
from relaunch.domain.tracking_sync import SyncedTracking
from relaunch.service.orchestrator import Deps, Orchestrator
from tests.unit.test_orchestrator import World

SPEC = load_spec(Path(__file__).resolve().parents[2] / "pipelines" / "digits.yaml")
VERSION = "relaunch-demo/digits/digits-model:v3"
URL = "https://wandb.example/relaunch-demo/digits/runs/"


class FakeTracking:
    """The W&B the runs are synced to: what was asked, and the aliases it holds; fails its first `failures` syncs."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.syncs: list[tuple[str, str | None, str, str]] = []
        self.aliases: dict[str, str] = {}

    def sync(self, folder: str, *, entity: str | None, project: str, model_alias: str) -> SyncedTracking:
        self.syncs.append((folder, entity, project, model_alias))
        if len(self.syncs) <= self.failures:
            raise TransientError("W&B answered 503")
        return SyncedTracking({"train": URL + "t1", "evaluate": URL + "e1"}, VERSION)

    def set_alias(self, ref: str, alias: str) -> None:
        self.aliases[alias] = ref


def _world(tracking: FakeTracking | None, mode: str = "online") -> World:
    spec = SPEC.model_copy(update={"tracking": TrackingSpec.model_validate({"wandb": mode})})
    w = World()  # its fakes, with an orchestrator that has the tracking sync and the spec asking for it
    ports = (w.store, w.builder, w.backend, w.blobs, w.registry, w.endpoint, w.notifier)
    w.orch = Orchestrator(Deps(*ports, lambda: {"digits": spec}, "/art", tracking=tracking))
    return w


def test_a_promoted_run_has_its_runs_synced_once_and_the_promote_alias_on_the_version_they_logged() -> None:
    tracking = FakeTracking()
    w = _world(tracking)
    done = w.promote(1)
    assert done.state is RunState.PROMOTED
    assert tracking.syncs == [("/art/runs/digits-1/wandb", "relaunch-demo", "digits", "relaunch-digits-1")]
    [note] = [e for e in w.store.timeline(done.id) if e.message.startswith("synced")]
    assert note.data["wandb_run_url"] == URL + "e1" and note.data["artifact"] == VERSION  # the dashboard links it
    assert tracking.aliases == {"production": VERSION}
    w.orch.handle(JobFinished(run_id=done.id, step="evaluate", job_id="x", state="succeeded"))  # redelivered
    assert len(tracking.syncs) == 1 and done.trigger.artifact is None


def test_a_failed_sync_never_fails_the_run_is_noted_once_and_is_tried_again_on_the_next_step() -> None:
    tracking = FakeTracking(failures=1)
    w = _world(tracking)
    done = w.promote(1)
    assert done.state is RunState.PROMOTED  # the gate's sync failed; the rollout's retry succeeded
    assert len(tracking.syncs) == 2 and tracking.aliases == {"production": VERSION}
    warnings = [e.message for e in w.store.timeline(done.id) if e.kind == "warning"]
    assert warnings == ["W&B runs not synced (tried again on the run's next step): W&B answered 503"]


def test_a_sync_that_keeps_failing_leaves_the_promotion_and_moves_no_alias() -> None:
    tracking = FakeTracking(failures=99)
    w = _world(tracking)
    assert w.promote(1).state is RunState.PROMOTED and not tracking.aliases
    assert len([e for e in w.store.timeline("digits-1") if e.kind == "warning"]) == 1


def test_online_without_a_key_says_so_once_and_promotes() -> None:
    w = _world(None)
    done = w.promote(1)
    assert done.state is RunState.PROMOTED
    [warning] = [e.message for e in w.store.timeline(done.id) if e.kind == "warning"]
    assert "no W&B key is configured (RELAUNCH_WANDB_API_KEY)" in warning


def test_offline_tracking_is_never_synced_even_with_a_key() -> None:
    tracking = FakeTracking()
    w = _world(tracking, "offline")
    assert w.promote(1).state is RunState.PROMOTED and tracking.syncs == [] and not tracking.aliases


def test_a_rejected_run_is_synced_too_and_aliased_nowhere() -> None:
    tracking = FakeTracking()
    w = _world(tracking)
    done = w.promote(1, {"accuracy": 0.5, "macro_f1": 0.5})
    assert done.state is RunState.REJECTED and len(tracking.syncs) == 1 and not tracking.aliases
