"""The Lanes contract on every store: a lane's head moves only from the head the caller saw."""

from __future__ import annotations

from relaunch.domain.ports import RunStore


def test_the_lane_head_moves_only_from_what_the_caller_saw(store: RunStore) -> None:
    assert store.lane_head("churn|branch|refs/heads/main") is None
    assert store.take_lane("churn|branch|refs/heads/main", None, "r1")
    assert not store.take_lane("churn|branch|refs/heads/main", None, "r2")  # r1 took it first
    assert not store.take_lane("churn|branch|refs/heads/main", "r0", "r2")
    assert store.take_lane("churn|branch|refs/heads/main", "r1", "r2")
    assert store.lane_head("churn|branch|refs/heads/main") == "r2"
    assert store.lane_head("churn|pr|a/b#1") is None  # lanes are apart
