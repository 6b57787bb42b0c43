"""Exactly once, nothing lost: content dedupe and the lane's atomic head, over functions-framework and real SQLite."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from relaunch import bootstrap
from relaunch.adapters.local.sqlite_store import SqliteRunStore
from relaunch.domain.model import RunState
from relaunch.service.spec_cache import SpecCache
from relaunch.simulate import github_headers, retrain_data
from tests.fakes import FakeBackend, FakeBlobs, FakeBuilder, FakeEndpoint, FakeNotifier, FakeRegistry
from tests.integration.test_functions import GITHUB, ROOT, client, command_event, settings

SHA = "c0ffee" + "0" * 34
DELIVERIES = 8


def push_body(sha: str = SHA) -> bytes:
    """GitHub's push sample, moved to the demo pipeline's repository and branch, touching a watched file."""
    data = json.loads((GITHUB / "push.2.json").read_text())
    data["repository"]["full_name"] = "relaunch-demo/digits"
    data["ref"], data["after"] = "refs/heads/main", sha
    data["head_commit"] = {**(data.get("head_commit") or {}), "id": sha, "modified": ["train.py"]}
    data["commits"] = [{**data["head_commit"]}]
    return json.dumps(data).encode()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[bootstrap.App]:
    fakes = {
        "builder": FakeBuilder(),
        "backend": FakeBackend(),
        "blobs": FakeBlobs(),
        "registry": FakeRegistry(),
        "endpoint": FakeEndpoint(),
        "notifier": FakeNotifier(),
    }
    built = bootstrap.App(settings(tmp_path), overrides=fakes)
    bootstrap.use(built)
    yield built
    bootstrap.use(None)
    assert isinstance(built.store, SqliteRunStore)  # the local profile's store, which holds a connection pool
    built.store.close()


def together(actions: list[Callable[[], Any]]) -> list[Any]:
    """Run every action at once (a barrier releases them together); their results, in order."""
    barrier, results = threading.Barrier(len(actions)), [None] * len(actions)

    def go(i: int) -> None:
        barrier.wait()
        results[i] = actions[i]()

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(actions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def post_push(delivery: str, body: bytes) -> Callable[[], Any]:
    """A POST of a signed push, ready to send (functions-framework builds its app here: that is not thread-safe)."""
    webhook = client("github_webhook")
    return lambda: webhook.post("/", data=body, headers=github_headers("push", body, "s", delivery))


def post_command(headers: dict[str, str], data: bytes) -> Callable[[], int]:
    orchestrator = client("orchestrator")
    return lambda: orchestrator.post("/", data=data, headers=headers).status_code


@pytest.mark.parametrize("round_", range(50))
def test_many_deliveries_of_one_commit_at_once_make_one_run_and_one_training(stack: bootstrap.App, round_: int) -> None:
    body = push_body()
    replies = together([post_push(f"storm-{round_}-{i}", body) for i in range(DELIVERIES)])
    outcomes = sorted(r.get_json()["outcome"] for r in replies)
    assert outcomes == ["accepted"] + ["duplicate"] * (DELIVERIES - 1), outcomes
    [run] = stack.store.list_runs()
    assert all(r.get_json()["runs"] == [run.id] for r in replies)
    assert len(stack.store.list_deliveries()) == DELIVERIES  # every delivery is kept, each says what it was

    # A manual retrain of the same commit arrives too; every command is handled at once, twice over.
    retrain = retrain_data("relaunch-demo/digits", "main", "digits", "again", None, f"r-{round_}")
    headers, data = command_event({**retrain, "sha": SHA}, message_id=f"m-{round_}")
    assert client("orchestrator").post("/", data=data, headers=headers).status_code == 200
    runs = stack.store.list_runs()
    assert len(runs) == 2
    starts = [
        command_event({"type": "start_run", "run_id": r.id}, message_id=f"{r.id}-{n}") for r in runs for n in (1, 2)
    ]
    statuses = together([post_command(headers, data) for headers, data in starts])
    assert all(s in (200, 503) for s in statuses), statuses  # 503: a lost race the bus redelivers
    for headers, data in starts:  # the redeliveries
        post_command(headers, data)()

    assert isinstance(stack.backend, FakeBackend)
    trainings = [job for job in stack.backend.submitted.values() if job.step == "train"]
    states = {r.id: (stack.store.get_run(r.id).state, stack.store.get_run(r.id).reason) for r in runs}  # type: ignore[union-attr]
    assert len(trainings) == 1, states
    assert sorted(s.value for s, _ in states.values()) in (["received", "training"], ["superseded", "training"])


def test_the_same_body_under_a_new_delivery_id_starts_nothing_and_names_the_run(stack: bootstrap.App) -> None:
    body = push_body()
    first = post_push("d-1", body)().get_json()
    again = post_push("d-2", body)()
    assert again.status_code == 200 and again.get_json()["outcome"] == "duplicate"
    assert (
        again.get_json()["runs"] == first["runs"] and "relaunch replay github:d-2 --force" in again.get_json()["hint"]
    )
    assert len(stack.store.list_runs()) == 1


def test_a_spec_edit_that_does_not_validate_keeps_the_last_good_one_serving(
    tmp_path: Path, stack: bootstrap.App, caplog: pytest.LogCaptureFixture
) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "digits.yaml").write_text((ROOT / "pipelines" / "digits.yaml").read_text())
    cache = SpecCache(specs)
    stack.__dict__["specs"] = cache
    stack.__dict__.pop("ingest", None)
    assert list(cache()) == ["digits"]
    (specs / "digits.yaml").write_text("name: digits\ntrain: {command: 42}\n")  # an edit that does not validate
    cache.RECHECK_S = 0.0

    reply = post_push("after-edit", push_body())()
    assert reply.status_code == 202, reply.get_data(as_text=True)
    body = reply.get_json()
    assert body["outcome"] == "accepted" and "digits.yaml" in body["spec_problem"]
    assert len(stack.store.list_runs()) == 1
    assert any("last valid" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_a_delivery_that_arrives_while_no_spec_is_valid_is_kept_and_replayable(
    tmp_path: Path, stack: bootstrap.App
) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "digits.yaml").write_text("name: digits\ntrain: {command: 42}\n")
    stack.__dict__["specs"] = SpecCache(specs)
    stack.__dict__.pop("ingest", None)

    reply = post_push("lost-before", push_body())()
    assert reply.status_code == 503 and "Traceback" not in reply.get_data(as_text=True)
    assert reply.get_json()["replay"] == "relaunch replay github:lost-before"
    row = stack.store.get_delivery("github:lost-before")
    assert row is not None and row.outcome.startswith("failed") and stack.store.list_runs() == []

    (specs / "digits.yaml").write_text((ROOT / "pipelines" / "digits.yaml").read_text())
    stack.__dict__["specs"] = SpecCache(specs)
    stack.__dict__.pop("ingest", None)
    again = post_push("lost-before", push_body())()  # GitHub's "Redeliver" sends the same delivery id
    assert again.status_code == 202 and again.get_json()["key"] == "github:lost-before#replay-1"
    [run] = stack.store.list_runs()
    assert run.state is RunState.RECEIVED and run.trigger.sha == SHA
