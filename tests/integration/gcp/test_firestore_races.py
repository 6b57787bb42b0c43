"""Concurrent writers on the Firestore emulator: orchestrator instances racing on a run, webhooks racing on a key.

Each writer has its own client, as two Cloud Function instances would; a barrier lines them up so they really race.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from relaunch.adapters.gcp.firestore_store import FirestoreRunStore
from relaunch.domain.model import Delivery, PipelineRun, RunState, TimelineEntry, Trigger
from relaunch.domain.ports import ConflictError, Recorded, TransientError

ROUNDS = 6
# A 503 (TransientError) is retried by its sender. On a loaded CI machine the emulator kept one of four writers losing
# lock races through all the store's transaction rounds (42 s): the invariant here is one run per content and every
# delivery kept once the sender has retried.
SENDER_TRIES = 3
STATES = [RunState.BUILDING, RunState.TRAINING, RunState.EVALUATING]


def make_run(run_id: str) -> PipelineRun:
    trigger = Trigger(kind="push", delivery_key=f"d-{run_id}", repo="acme/churn", sha="abc123")
    return PipelineRun(id=run_id, pipeline="churn", trigger=trigger, created_at=1000.0, updated_at=1000.0)


@pytest.fixture
def instances(store: FirestoreRunStore, project: str) -> Iterator[list[FirestoreRunStore]]:
    """Four more stores on the same project, each with its own client (separate function instances)."""
    made = [FirestoreRunStore(project) for _ in range(4)]
    yield made
    for instance in made:
        instance.close()


def run_together(workers: list[Callable[[threading.Barrier], Any]]) -> list[Any]:
    """Run the workers in threads released by one barrier; their results (or exceptions) in order."""
    barrier = threading.Barrier(len(workers))
    results: list[Any] = [None] * len(workers)

    def call(i: int) -> None:
        try:
            results[i] = workers[i](barrier)
        except Exception as exc:  # kept for the assertions
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a writer hung"
    return results


def orchestrator_step(store: FirestoreRunStore, name: str, round_no: int) -> Callable[[threading.Barrier], str]:
    """Load the run, wait for the rival, move it on and save (what an orchestrator does per command)."""

    def step(barrier: threading.Barrier) -> str:
        run = store.get_run("r1")
        assert run is not None
        barrier.wait()
        moved = run.model_copy(update={"state": STATES[round_no % len(STATES)], "reason": name})
        store.save_run(moved, [TimelineEntry(kind="state", message=f"round {round_no}: {name}")])
        return name

    return step


def test_two_orchestrators_racing_on_a_run_exactly_one_wins_each_round(
    store: FirestoreRunStore, instances: list[FirestoreRunStore]
) -> None:
    store.record_delivery(Delivery(key="k1", source="github"), [make_run("r1")])
    left, right = instances[:2]
    winners: list[str] = []

    for round_no in range(ROUNDS):
        results = run_together([orchestrator_step(left, "left", round_no), orchestrator_step(right, "right", round_no)])

        won = [r for r in results if isinstance(r, str)]
        lost = [r for r in results if isinstance(r, ConflictError)]
        assert (len(won), len(lost)) == (1, 1), results
        winners += won
        assert store.get_run("r1").reason == won[0]  # type: ignore[union-attr]

    final = store.get_run("r1")
    assert final is not None and final.version == ROUNDS
    messages = [e.message for e in store.timeline("r1")]
    assert messages == ["received", *(f"round {i}: {w}" for i, w in enumerate(winners))]
    assert len(set(messages)) == len(messages)


def redelivered(instance: FirestoreRunStore, run_id: str, result: object) -> Recorded:
    """The writer's answer, with a transient failure delivered again (at most 5 times) as GitHub retries a 5xx."""
    for _ in range(5):
        if isinstance(result, Recorded):
            return result
        if not isinstance(result, TransientError):
            raise AssertionError(f"{run_id}: {result!r}")
        try:
            result = instance.record_delivery(Delivery(key="github:same-delivery", source="github"), [make_run(run_id)])
        except TransientError as exc:
            result = exc
    raise AssertionError(f"{run_id}: still failing after 5 deliveries: {result!r}")


def test_concurrent_deliveries_of_one_key_record_it_once(
    store: FirestoreRunStore, instances: list[FirestoreRunStore]
) -> None:
    def record(instance: FirestoreRunStore, run_id: str) -> Callable[[threading.Barrier], Recorded]:
        def write(barrier: threading.Barrier) -> Recorded:
            barrier.wait()
            return instance.record_delivery(Delivery(key="github:same-delivery", source="github"), [make_run(run_id)])

        return write

    raced = run_together([record(instance, f"r{i}") for i, instance in enumerate(instances)])
    # A writer that lost the race by contention answers a transient error (the webhook's 503): GitHub delivers again.
    # Any other exception fails the test; bool() of an exception object would count it as a recording.
    results = [bool(redelivered(instances[i], f"r{i}", r)) for i, r in enumerate(raced)]

    assert sorted(results) == [False, False, False, True], results
    [run] = store.list_runs()
    assert run.id == f"r{results.index(True)}"
    assert store.get_delivery("github:same-delivery").run_ids == [run.id]  # type: ignore[union-attr]
    assert [e.message for e in store.timeline(run.id)] == ["received"]
    assert all(store.get_run(f"r{i}") is None for i in range(4) if i != results.index(True))


def test_racing_first_writes_of_an_effect_keep_one_result(
    store: FirestoreRunStore, instances: list[FirestoreRunStore]
) -> None:
    def put(instance: FirestoreRunStore, job_id: str) -> Callable[[threading.Barrier], None]:
        def write(barrier: threading.Barrier) -> None:
            barrier.wait()
            instance.put_effect("r1", "submit:train", {"job_id": job_id})

        return write

    results = run_together([put(instance, f"j{i}") for i, instance in enumerate(instances)])

    assert results == [None] * 4  # nobody failed
    recorded = [instance.get_effect("r1", "submit:train") for instance in instances]
    assert recorded[0] in [{"job_id": f"j{i}"} for i in range(4)] and recorded == [recorded[0]] * 4


def test_concurrent_deliveries_of_one_content_under_different_keys_write_one_run(
    store: FirestoreRunStore, instances: list[FirestoreRunStore]
) -> None:
    def record(instance: FirestoreRunStore, i: int) -> Callable[[threading.Barrier], Any]:
        run = make_run(f"c{i}").model_copy(update={"content_key": "churn|push|abc123"})

        def write(barrier: threading.Barrier) -> Any:
            barrier.wait()
            for attempt in range(1, SENDER_TRIES + 1):
                try:
                    return instance.record_delivery(Delivery(key=f"github:content-{i}", source="github"), [run])
                except TransientError:  # answered 503: the sender delivers it again (functions/races.py)
                    if attempt == SENDER_TRIES:
                        raise
            return None

        return write

    results = run_together([record(instance, i) for i, instance in enumerate(instances)])
    assert all(isinstance(r, Recorded) and r.written for r in results), results  # every delivery is kept
    [run] = store.list_runs()
    assert sorted(len(r.held) for r in results) == [0, 1, 1, 1]
    assert {holder for r in results for holder in r.held.values()} == {run.id}


def test_the_lane_head_is_taken_by_exactly_one_of_many_instances(
    store: FirestoreRunStore, instances: list[FirestoreRunStore]
) -> None:
    def take(instance: FirestoreRunStore, i: int) -> Callable[[threading.Barrier], bool]:
        def go(barrier: threading.Barrier) -> bool:
            barrier.wait()
            return instance.take_lane("churn|branch|refs/heads/main", None, f"r{i}")

        return go

    results = run_together([take(instance, i) for i, instance in enumerate(instances)])
    assert sorted(results) == [False, False, False, True]
    winner = f"r{results.index(True)}"
    assert store.lane_head("churn|branch|refs/heads/main") == winner
    assert not store.take_lane("churn|branch|refs/heads/main", "someone-else", "x")
    assert store.take_lane("churn|branch|refs/heads/main", winner, "next")
    assert store.lane_head("churn|branch|refs/heads/main") == "next"
