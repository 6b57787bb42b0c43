"""Deduplication on content: a delivery that would start a run that already exists starts nothing, whatever its id."""

from __future__ import annotations

import json

import pytest

from relaunch.domain.commands import COMMANDS_TOPIC
from relaunch.domain.model import RunState
from relaunch.simulate import github_headers
from relaunch.triggers.errors import Unprocessable
from relaunch.triggers.github import parse_github
from tests.unit.test_ingest import HELLO, SECRET, deliver, sample, spec, world


def test_the_same_signed_push_under_a_new_delivery_id_is_a_duplicate_naming_the_run() -> None:
    service, store, bus = world(HELLO)
    _, first = deliver(service, "push.2.json", "push", "d-1")
    status, again = deliver(service, "push.2.json", "push", "d-2")  # the same body, re-sent under a new id
    assert status == 200 and again["outcome"] == "duplicate"
    assert again["runs"] == first["runs"] and "6113728" in again["reason"]
    assert "--force" in again["hint"]
    assert len(store.runs) == 1
    assert [m for m in bus.messages if m[0] == COMMANDS_TOPIC and m[1]["type"] == "start_run"] == [
        (COMMANDS_TOPIC, {"run_id": first["runs"][0], "type": "start_run"}, {"run_id": first["runs"][0]})
    ]
    row = store.deliveries["github:d-2"]  # the re-sent delivery is kept, and says what it was
    assert row.outcome.startswith("duplicate") and row.run_ids == []


def test_two_synchronize_deliveries_of_one_head_start_one_run() -> None:
    service, store, _ = world(spec(branches=["master"]))
    _, first = deliver(service, "pull_request.synchronize.1.json", "pull_request", "d-1")
    status, again = deliver(service, "pull_request.synchronize.1.json", "pull_request", "d-2")
    assert status == 200 and again["outcome"] == "duplicate" and again["runs"] == first["runs"]
    assert len(store.runs) == 1


def test_a_new_head_of_the_same_pull_request_is_a_new_run() -> None:
    service, store, _ = world(spec(branches=["master"]))
    deliver(service, "pull_request.synchronize.1.json", "pull_request", "d-1")
    moved = sample("pull_request.synchronize.1.json")
    moved["pull_request"]["head"]["sha"] = "b" * 40
    status, body = deliver(service, moved, "pull_request", "d-2")
    assert status == 202 and len(store.runs) == 2


def test_the_same_commit_on_two_pipelines_is_two_runs_and_a_resend_duplicates_both() -> None:
    service, store, _ = world(HELLO, spec(name="other", branches=["master"]))
    deliver(service, "push.2.json", "push", "d-1")
    status, again = deliver(service, "push.2.json", "push", "d-2")
    assert len(store.runs) == 2 and status == 200 and again["outcome"] == "duplicate" and len(again["runs"]) == 2


def test_a_push_of_one_commit_to_two_branches_trains_it_once() -> None:
    service, store, _ = world(spec(branches=["master", "release"]))
    deliver(service, "push.2.json", "push", "d-1")
    other = {**sample("push.2.json"), "ref": "refs/heads/release"}
    status, body = deliver(service, other, "push", "d-2")
    assert status == 200 and body["outcome"] == "duplicate" and len(store.runs) == 1


def test_dispatches_schedules_and_drift_carry_their_own_reason_and_are_not_content_duplicates() -> None:
    service, store, _ = world(HELLO)
    deliver(service, "push.2.json", "push", "d-1")
    dispatch = sample("workflow_dispatch.1.json")
    dispatch["repository"] = sample("push.2.json")["repository"]
    dispatch["inputs"] = {"pipeline": "hello", "sha": sample("push.2.json")["after"]}
    status, _ = deliver(service, dispatch, "workflow_dispatch", "d-2")
    status2, _ = deliver(service, dispatch, "workflow_dispatch", "d-3")
    assert (status, status2) == (202, 202) and len(store.runs) == 3


def test_replay_with_force_runs_the_same_commit_again_and_says_so() -> None:
    service, store, _ = world(HELLO)
    deliver(service, "push.2.json", "push", "d-1")
    plain = service.replay("github:d-1")
    assert plain.body["outcome"] in ("nudged", "duplicate")  # the run is still in flight: nudged, nothing new
    for run in list(store.runs.values()):
        store.runs[run.id] = run.model_copy(update={"state": RunState.PROMOTED})
    assert service.replay("github:d-1").body["outcome"] == "duplicate" and len(store.runs) == 1
    forced = service.replay("github:d-1", force=True)
    assert forced.status == 202 and len(store.runs) == 2
    new = store.runs[forced.body["runs"][0]]
    assert new.trigger.force and "force" in new.trigger.reason


def test_a_forced_dispatch_input_is_read_and_a_bad_one_named() -> None:
    service, store, _ = world(HELLO)
    dispatch = sample("workflow_dispatch.1.json")
    dispatch["repository"] = sample("push.2.json")["repository"]
    dispatch["inputs"] = {"pipeline": "hello", "force": "true"}
    status, body = deliver(service, dispatch, "workflow_dispatch", "d-1")
    assert status == 202 and store.runs[body["runs"][0]].trigger.force
    dispatch["inputs"] = {"pipeline": "hello", "force": "maybe"}
    body_bytes = json.dumps(dispatch).encode()
    headers = github_headers("workflow_dispatch", body_bytes, SECRET, "d-2")
    with pytest.raises(Unprocessable) as refused:
        service.github(parse_github(headers, body_bytes, secret=SECRET), headers, body_bytes)
    assert refused.value.field == "inputs.force" and "true or false" in refused.value.message
    assert "github:d-2" not in store.deliveries
