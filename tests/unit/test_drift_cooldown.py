"""The drift cooldown counts only drift runs that trained (or may still train): a failed build does not suppress the
retry after the fix. Run on the fake store and on SQLite, through the ingest service, as a drift alert arrives."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from relaunch.adapters.local.sqlite_store import SqliteRunStore
from relaunch.domain.coalescing import starts_cooldown
from relaunch.domain.model import Delivery, PipelineRun, RunState, Trigger
from relaunch.domain.ports import IngestStore
from relaunch.domain.spec import DriftPolicy, EvaluateSpec, JobSpec, PipelineSpec, SourceSpec
from relaunch.service.ingest import IngestService, Reply
from relaunch.simulate import monitoring_incident
from relaunch.triggers.drift import parse_drift
from relaunch.triggers.pubsub import from_cloudevent_data
from tests.fakes import FakeBus, FakeStore

SPEC = PipelineSpec(
    name="digits",
    source=SourceSpec(repo="acme/digits", clone_url="file:///digits"),
    train=JobSpec(command=["python", "train.py"]),
    evaluate=EvaluateSpec(command=["python", "evaluate.py"]),
    endpoint="digits-ep",
    drift=DriftPolicy(cooldown_s=21600),
)


@pytest.fixture(params=["fake", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IngestStore]:
    if request.param == "fake":
        yield FakeStore()
        return
    sqlite = SqliteRunStore(tmp_path / "relaunch.db")
    yield sqlite
    sqlite.close()


class Clock:
    """The service's clock; runs are stamped with the wall clock, so each test moves from the first run's stamp."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def alert(service: IngestService, message_id: str) -> Reply:
    data = monitoring_incident(pipeline="digits", endpoint=None, severity="critical")
    envelope = {"message": {"data": base64.b64encode(json.dumps(data).encode()).decode(), "messageId": message_id}}
    delivery = Delivery(key=f"pubsub:drift_alert:{message_id}", source="drift", body=json.dumps(envelope))
    return service.drift(parse_drift(from_cloudevent_data(envelope)), delivery)


def ended(store: IngestStore, run_id: str, state: RunState, **update: object) -> None:
    run = store.get_run(run_id)
    assert run is not None
    store.save_run(run.model_copy(update={"state": state, **update}))


def first_run(store: IngestStore, clock: Clock) -> tuple[IngestService, str, float]:
    """The service, and the first drift run it started with its creation time."""
    service = IngestService(store, FakeBus(), lambda: {"digits": SPEC}, clock=clock)
    reply = alert(service, "m1")
    assert reply.body["outcome"] == "accepted", reply.body
    made = store.get_run(reply.body["runs"][0])
    assert made is not None
    return service, made.id, made.created_at


def test_a_drift_run_that_failed_before_training_does_not_start_the_cooldown(store: IngestStore) -> None:
    clock = Clock()
    service, run_id, t0 = first_run(store, clock)
    ended(store, run_id, RunState.FAILED, reason="build failed: clone of file:///digits failed")
    clock.now = t0 + 91
    retry = alert(service, "m2")
    # was: "skipped: cooldown: the last drift run started 91s ago (cooldown 21600s)"
    assert retry.body["outcome"] == "accepted", retry.body


def test_a_drift_run_that_trained_starts_the_cooldown_even_if_it_failed_later(store: IngestStore) -> None:
    clock = Clock()
    service, run_id, t0 = first_run(store, clock)
    ended(store, run_id, RunState.FAILED, jobs={"train": "j1", "evaluate": "j2"}, reason="evaluation failed")
    clock.now = t0 + 91
    again = alert(service, "m2")
    assert again.body["outcome"] == "skipped" and "cooldown" in again.body["skipped"]["digits"]
    assert "91s ago" in again.body["skipped"]["digits"]


def test_a_drift_run_still_on_its_way_holds_the_cooldown(store: IngestStore) -> None:
    clock = Clock()
    service, _, t0 = first_run(store, clock)
    clock.now = t0 + 30
    assert "cooldown" in alert(service, "m2").body["skipped"]["digits"]


def test_the_cooldown_ends_after_cooldown_s(store: IngestStore) -> None:
    clock = Clock()
    service, run_id, t0 = first_run(store, clock)
    ended(store, run_id, RunState.REJECTED, jobs={"train": "j1", "evaluate": "j2"})
    clock.now = t0 + SPEC.drift.cooldown_s + 1
    assert alert(service, "m2").body["outcome"] == "accepted"


def run(state: RunState, kind: str = "drift", jobs: dict[str, str] | None = None) -> PipelineRun:
    trigger = Trigger(kind=kind, delivery_key="k", ref="refs/heads/main")  # type: ignore[arg-type]
    return PipelineRun(id="r", pipeline="digits", trigger=trigger, state=state, jobs=jobs or {})


@pytest.mark.parametrize(
    ("candidate", "counts"),
    [
        (run(RunState.RECEIVED), True),  # on its way: a second alert would train the same data again
        (run(RunState.TRAINING, jobs={"train": "j"}), True),
        (run(RunState.FAILED), False),  # failed before training: the retry after the fix must run
        (run(RunState.FAILED, jobs={"train": "j"}), False),  # its training failed
        (run(RunState.SUPERSEDED, jobs={"train": "j"}), False),  # stopped before it trained
        (run(RunState.FAILED, jobs={"train": "j", "evaluate": "e"}), True),  # trained, failed at evaluation
        (run(RunState.REJECTED, jobs={"train": "j", "evaluate": "e"}), True),
        (run(RunState.PROMOTED, jobs={"train": "j", "evaluate": "e"}), True),
        (run(RunState.ROLLED_BACK, jobs={"train": "j", "evaluate": "e"}), True),
        (run(RunState.PROMOTED, kind="push", jobs={"train": "j", "evaluate": "e"}), False),  # not a drift run
    ],
)
def test_which_runs_start_the_cooldown(candidate: PipelineRun, counts: bool) -> None:
    assert starts_cooldown(candidate) is counts
