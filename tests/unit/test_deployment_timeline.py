"""Deployments on the run's timeline: what the embedded profile would send GitHub, one entry per deployment status."""

from __future__ import annotations

from typing import Any

from relaunch.adapters.local.notifier import TimelineNotifier
from relaunch.domain.model import Notification, TimelineEntry
from relaunch.domain.reporting import deployment_state
from tests.fakes import FakeStore

SHA = "9f3c1d2e4b5a69788796a5b4c3d2e1f001234567"


def note(state: str, description: str, **fields: Any) -> Notification:
    values: dict[str, Any] = {"run_id": "run-42", "pipeline": "digits", "repo": "relaunch-demo/digits", "sha": SHA}
    values.update(stage="deploy", state=state, description=description, endpoint="digits", model_version="v3")
    return Notification(**{**values, **fields})


def deployments(store: FakeStore, run_id: str = "run-42") -> list[TimelineEntry]:
    return [e for e in store.timeline(run_id) if e.kind == "deployment"]


def test_a_rollout_is_one_deployment_whose_statuses_land_on_the_timeline() -> None:
    store = FakeStore()
    notifier = TimelineNotifier(store)
    notifier.notify(note("pending", "Deploying v3 to digits"))
    notifier.notify(note("success", "v3 serves 100% of digits"))
    entries = deployments(store)
    assert [e.data["status"] for e in entries] == ["in_progress", "success"]
    assert {e.data["environment"] for e in entries} == {"digits"} and {e.data["id"] for e in entries} == {None}
    assert entries[0].data["model_version"] == "v3" and entries[0].data["ref"] == SHA
    assert entries[1].message == "deployment of v3 to digits: success: v3 serves 100% of digits"


def test_a_rollback_during_the_rollout_fails_the_deployment_and_one_after_it_makes_it_inactive() -> None:
    store = FakeStore()
    notifier = TimelineNotifier(store)
    notifier.notify(note("pending", "Deploying v3 to digits"))
    notifier.notify(note("failure", "Rolled back: canary error rate 0.30 > 0.05"))
    assert [e.data["status"] for e in deployments(store)] == ["in_progress", "failure"]
    notifier.notify(note("pending", "Deploying v4 to digits", run_id="run-43"))
    notifier.notify(note("success", "v4 serves 100% of digits", run_id="run-43"))
    notifier.notify(note("failure", "Rolled back: rolled back by hand to v3", run_id="run-43"))
    assert [e.data["status"] for e in deployments(store, "run-43")] == ["in_progress", "success", "inactive"]


def test_no_deployment_for_other_stages_a_pull_request_or_a_notifier_told_github_records_them() -> None:
    store = FakeStore()
    TimelineNotifier(store).notify(note("success", "Built", stage="build"))
    TimelineNotifier(store).notify(note("success", "v3 serves", evaluate_only=True, trigger_kind="pull_request"))
    TimelineNotifier(store, deployments=False).notify(note("pending", "Deploying v3 to digits"))
    assert deployments(store) == [] and len(store.timeline("run-42")) == 3  # the three commit statuses


def test_the_deployment_state_of_each_commit_status_state() -> None:
    assert [deployment_state(note(s, "")) for s in ("pending", "success", "failure", "error")] == [
        "in_progress",
        "success",
        "failure",
        "error",
    ]
    assert deployment_state(note("failure", ""), previous="success") == "inactive"
    assert deployment_state(note("failure", ""), previous="in_progress") == "failure"
    assert deployment_state(note("error", ""), previous="success") == "error"
