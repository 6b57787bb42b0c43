"""The retention policy's decisions, from values: what housekeeping may delete, and what it must never touch."""

from __future__ import annotations

from relaunch.domain.model import ModelVersion, PipelineRun, RolloutProgress, RunState, Trigger
from relaunch.domain.retention import (
    DAY_S,
    RetentionPolicy,
    RunFolder,
    StoredBody,
    bodies_to_drop,
    folders_to_delete,
    may_delete_folder,
    pinned_versions,
    rollback_target,
    run_of,
    versions_to_delete,
)

NOW = 10 * DAY_S + 1_000_000.0


def run(run_id: str, state: RunState, created_at: float, **update: object) -> PipelineRun:
    trigger = Trigger(kind="push", delivery_key=f"d-{run_id}", sha="a" * 40)
    made = PipelineRun(id=run_id, pipeline="digits", trigger=trigger, state=state, created_at=created_at)
    return made.model_copy(update=update)


def folder(name: str, mtime: float = 0.0, kind: str = "workspace") -> RunFolder:
    return RunFolder(kind, name, 100, mtime)  # type: ignore[arg-type]


def test_a_folder_names_its_run() -> None:
    assert run_of("digits-abc") == "digits-abc"
    assert run_of("digits-abc.evaluator") == "digits-abc"  # the evaluator's checkout is its run's
    assert run_of(".digits-abc.k2j4x_9q") == "digits-abc"  # a build attempt's temporary clone
    assert run_of(".history") is None  # the commit-history cache is no run's
    assert run_of(".gc-0123") is None


def test_folders_of_runs_in_flight_and_of_the_newest_finished_ones_stay() -> None:
    runs = {
        "old": run("old", RunState.PROMOTED, 1.0),
        "mid": run("mid", RunState.REJECTED, 2.0),
        "new": run("new", RunState.FAILED, 3.0),
        "live": run("live", RunState.TRAINING, 0.5),  # the oldest of all, and still training
    }
    found = [folder(n) for n in ("old", "mid", "new", "live", "old.evaluator", ".live.x1", ".old.x2", ".history")]
    gone = folders_to_delete(RetentionPolicy(workspaces=2), found, runs, NOW)
    assert {(r.name, r.reason) for r in gone} == {
        ("old", "run promoted, not among the last 2 finished runs"),
        ("old.evaluator", "run promoted, not among the last 2 finished runs"),
        (".old.x2", "run promoted, not among the last 2 finished runs"),
    }
    assert [r.name for r in folders_to_delete(RetentionPolicy(workspaces=0), found, runs, NOW)] == [
        "old", "mid", "new", "old.evaluator", ".old.x2",
    ]  # fmt: skip


def test_a_folder_of_no_known_run_goes_only_after_the_grace_period_and_trash_always_goes() -> None:
    policy = RetentionPolicy(orphan_grace_s=3600)
    found = [folder("ghost-old", NOW - 7200), folder("ghost-new", NOW - 60), folder(".gc-1f2e", NOW)]
    assert [r.name for r in folders_to_delete(policy, found, {}, NOW)] == ["ghost-old", ".gc-1f2e"]


def test_the_last_check_before_deleting_reads_the_run_again() -> None:
    policy = RetentionPolicy(orphan_grace_s=3600)
    assert may_delete_folder(policy, "r", run("r", RunState.REJECTED, 1.0), 0.0, NOW)
    assert not may_delete_folder(policy, "r", run("r", RunState.BUILDING, 1.0), 0.0, NOW)
    assert not may_delete_folder(policy, "r", None, NOW - 10, NOW)  # a fresh folder of a run not (yet) seen
    assert may_delete_folder(policy, ".gc-9", None, NOW, NOW)


def test_bodies_older_than_the_days_are_dropped_unless_kept_for_a_replay() -> None:
    old, young = NOW - 31 * DAY_S, NOW - 29 * DAY_S
    bodies = [
        StoredBody("a", "github", old, "accepted", 5000),
        StoredBody("b", "github", young, "accepted", 5000),
        StoredBody("c", "drift", old, "failed: store down", 900),  # kept for a replay not made yet
        StoredBody("d", "drift", old, "failed: store down", 800),  # replayed: its replay's row holds a copy
        StoredBody("e", "github", old, "accepted", 0),
    ]
    dropped = bodies_to_drop(RetentionPolicy(body_days=30), bodies, {"d"}, NOW)
    assert [(r.name, r.size) for r in dropped] == [("a", 5000), ("d", 800)]
    assert dropped[0].reason == "received over 30 days ago (github)"


def test_versions_kept_are_the_newest_and_every_pinned_one() -> None:
    versions = [
        ModelVersion(pipeline="digits", version=f"v{n}", artifact_uri=f"/r/v{n}", run_id=f"r{n}", created_at=n)
        for n in range(1, 9)
    ]
    pins = {"v1": "the champion", "v3": "deployed on the endpoint"}
    gone = versions_to_delete(RetentionPolicy(versions=3), versions, pins)
    assert [r.name for r in gone] == ["digits:v5", "digits:v4", "digits:v2"]
    assert versions_to_delete(RetentionPolicy(versions=0), versions[:1], {}) == []  # the newest always stays


def test_pins_name_the_champion_the_endpoint_runs_in_flight_and_the_rollback_target() -> None:
    rollout = RolloutProgress(started_at=1, phase_started_at=1, previous_version="v2", new_version="v4")
    promoted = [
        run("p1", RunState.PROMOTED, 1.0, rollout=rollout.model_copy(update={"previous_version": "v1"})),
        run("p2", RunState.PROMOTED, 2.0, rollout=rollout),
    ]
    assert rollback_target(promoted) == "v2"
    assert rollback_target([run("x", RunState.REJECTED, 1.0)]) is None
    rolling = run(
        "r", RunState.ROLLING_OUT, 3.0, model_version="v6", rollout=rollout.model_copy(update={"new_version": "v6"})
    )
    pins = pinned_versions("v4", {"v4", "v3"}, [rolling], "v2")
    assert pins == {
        "v6": "named by run r, still rolling_out",
        "v2": "what `relaunch rollback` would put back",
        "v3": "deployed on the endpoint",
        "v4": "the champion",
    }
