"""Lost optimistic-concurrency races are expected: retried in the request, then a quiet status the sender retries."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relaunch import bootstrap
from relaunch.domain.ports import ConflictError, TransientError
from relaunch.functions.races import CONFLICT_ATTEMPTS
from relaunch.simulate import github_headers, schedule_data
from tests.integration.test_functions import (
    GITHUB,
    WANDB,
    client,
    command_event,
    pubsub_event,
    settings,
    wandb_headers,
)


class RacingOrchestrator:
    """Loses the race `losses` times, then applies the command."""

    def __init__(self, losses: int, error: type[Exception] = ConflictError) -> None:
        self.losses, self.error, self.attempts = losses, error, 0
        self.applied: list[Any] = []

    def handle(self, command: Any) -> None:
        self.attempts += 1
        if self.attempts <= self.losses:
            raise self.error("another orchestrator saved the run first")
        self.applied.append(command)


class RacingStore:
    """The real store, except that writing the inbox row loses the race `losses` times."""

    def __init__(self, real: Any, losses: int, error: type[Exception] = ConflictError) -> None:
        self.real, self.losses, self.error, self.attempts = real, losses, error, 0

    def record_delivery(self, delivery: Any, runs: Any) -> Any:
        self.attempts += 1
        if self.attempts <= self.losses:
            raise self.error("run r1: saved at version 1, store has 2")
        return self.real.record_delivery(delivery, runs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture
def use(tmp_path: Path) -> Iterator[Any]:
    def install(**overrides: Any) -> bootstrap.App:
        built = bootstrap.App(settings(tmp_path), overrides=overrides)
        bootstrap.use(built)
        return built

    yield install
    bootstrap.use(None)


def quiet(caplog: pytest.LogCaptureFixture) -> bool:
    """No ERROR record and no traceback anywhere in the captured logs."""
    return all(r.levelno < logging.ERROR and r.exc_info is None for r in caplog.records) and (
        "Traceback" not in caplog.text
    )


def test_a_command_that_loses_a_few_races_is_applied_once(use: Any, caplog: pytest.LogCaptureFixture) -> None:
    racing = RacingOrchestrator(losses=CONFLICT_ATTEMPTS - 1)
    use(orchestrator=racing)
    headers, body = command_event({"type": "start_run", "run_id": "r1"})
    reply = client("orchestrator").post("/", data=body, headers=headers)
    assert reply.status_code == 200 and len(racing.applied) == 1 and racing.applied[0].run_id == "r1"
    assert quiet(caplog)


def test_a_command_that_keeps_losing_is_answered_retryable_without_a_traceback(
    use: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    racing = RacingOrchestrator(losses=10**6)
    built = use(orchestrator=racing)
    headers, body = command_event({"type": "start_run", "run_id": "r1"})
    reply = client("orchestrator").post("/", data=body, headers=headers)
    assert reply.status_code == 503 and reply.headers.get("Retry-After")
    assert racing.attempts == CONFLICT_ATTEMPTS and racing.applied == []
    assert "ConflictError" not in reply.get_data(as_text=True) and built.store.list_dead_letters() == []
    assert quiet(caplog) and any("lost the race" in r.getMessage() for r in caplog.records)


def test_a_transient_failure_is_answered_retryable_without_a_traceback(
    use: Any, caplog: pytest.LogCaptureFixture
) -> None:
    racing = RacingOrchestrator(losses=1, error=TransientError)
    built = use(orchestrator=racing)
    headers, body = command_event({"type": "start_run", "run_id": "r1"})
    reply = client("orchestrator").post("/", data=body, headers=headers)
    assert reply.status_code == 503 and racing.attempts == 1  # a slow dependency is left to the bus's backoff
    assert built.store.list_dead_letters() == [] and quiet(caplog)


def test_a_pubsub_delivery_that_loses_a_few_races_is_kept_once(
    tmp_path: Path, use: Any, caplog: pytest.LogCaptureFixture
) -> None:
    racing = RacingStore(bootstrap.App(settings(tmp_path)).store, losses=CONFLICT_ATTEMPTS - 1)
    use(store=racing)
    headers, body = pubsub_event(schedule_data("nope"), message_id="42")
    reply = client("schedule_tick").post("/", data=body, headers=headers)
    assert reply.status_code == 200 and racing.attempts == CONFLICT_ATTEMPTS
    [delivery] = racing.list_deliveries()
    assert delivery.key == "pubsub:schedule_tick:42" and quiet(caplog)


def test_a_pubsub_delivery_that_keeps_losing_is_answered_retryable(
    tmp_path: Path, use: Any, caplog: pytest.LogCaptureFixture
) -> None:
    racing = RacingStore(bootstrap.App(settings(tmp_path)).store, losses=10**6)
    use(store=racing)
    headers, body = pubsub_event(schedule_data("nope"), message_id="42")
    reply = client("schedule_tick").post("/", data=body, headers=headers)
    assert reply.status_code == 503 and racing.attempts == CONFLICT_ATTEMPTS
    assert racing.list_deliveries() == [] and racing.list_dead_letters() == [] and quiet(caplog)


class BrokenStore:
    """The real store, except that writing a delivery that starts a run breaks as nobody foresaw."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def record_delivery(self, delivery: Any, runs: Any) -> Any:
        if runs:
            raise KeyError("an unforeseen bug")
        return self.real.record_delivery(delivery, runs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_a_pubsub_message_that_cannot_be_processed_is_dead_lettered_not_redelivered_forever(
    tmp_path: Path, use: Any, caplog: pytest.LogCaptureFixture
) -> None:
    broken = BrokenStore(bootstrap.App(settings(tmp_path)).store)
    use(store=broken)
    headers, body = pubsub_event(schedule_data("digits", reason="nightly"), message_id="43")
    for _ in range(2):  # a redelivery is answered the same way, and dead-lettered once
        reply = client("schedule_tick").post("/", data=body, headers=headers)
        assert 200 <= reply.status_code < 300
    [dead] = broken.list_dead_letters()
    assert dead.source == "schedule" and "unprocessable (KeyError)" in dead.reason and broken.list_runs() == []
    [delivery] = broken.list_deliveries()
    assert delivery.key == "pubsub:schedule_tick:43"  # kept: replayable once the bug is fixed
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["schedule_tick '43': cannot be processed; dead-lettering it"] * 2  # one per delivery


def test_a_lone_surrogate_in_a_pubsub_message_is_dead_lettered_naming_the_field(use: Any) -> None:
    built = use()
    headers, body = pubsub_event(schedule_data("digits", reason="x\ud800"), message_id="44")
    for _ in range(2):
        assert 200 <= client("schedule_tick").post("/", data=body, headers=headers).status_code < 300
    [dead] = built.store.list_dead_letters()
    assert dead.reason == "reason: reason is not valid Unicode text (a lone surrogate escape)"
    assert built.store.list_runs() == []


def push_delivery() -> tuple[bytes, dict[str, str]]:
    body = (GITHUB / "push.2.json").read_bytes()
    return body, github_headers("push", body, "s", "race-1")


@pytest.mark.parametrize("error", [ConflictError, TransientError])
def test_a_webhook_delivery_that_cannot_be_kept_now_is_a_quiet_retryable_503(
    tmp_path: Path, use: Any, caplog: pytest.LogCaptureFixture, error: type[Exception]
) -> None:
    racing = RacingStore(bootstrap.App(settings(tmp_path)).store, losses=10**6, error=error)
    use(store=racing)
    body, headers = push_delivery()
    reply = client("github_webhook").post("/", data=body, headers=headers)
    assert reply.status_code == 503 and reply.headers["Retry-After"] == "5"
    assert reply.is_json and "deliver again" in reply.get_json()["error"]
    assert racing.attempts == (CONFLICT_ATTEMPTS if error is ConflictError else 1)
    assert racing.list_deliveries() == [] and quiet(caplog)


def test_a_webhook_delivery_that_loses_a_few_races_is_kept_once(
    tmp_path: Path, use: Any, caplog: pytest.LogCaptureFixture
) -> None:
    racing = RacingStore(bootstrap.App(settings(tmp_path)).store, losses=CONFLICT_ATTEMPTS - 1)
    use(store=racing)
    body, headers = push_delivery()
    assert client("github_webhook").post("/", data=body, headers=headers).status_code < 300
    assert [d.key for d in racing.list_deliveries()] == ["github:race-1"] and quiet(caplog)


def test_a_wandb_delivery_that_cannot_be_kept_now_is_a_quiet_retryable_503(
    tmp_path: Path, use: Any, caplog: pytest.LogCaptureFixture
) -> None:
    use(store=RacingStore(bootstrap.App(settings(tmp_path)).store, losses=10**6, error=TransientError))
    reply = client("wandb_webhook").post("/", data=WANDB, headers=wandb_headers())
    assert reply.status_code == 503 and reply.headers["Retry-After"] == "5" and quiet(caplog)
