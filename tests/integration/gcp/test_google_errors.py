"""How the GCP adapters classify the Google SDK's errors (real api_core exception types, no server needed)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from google.api_core import exceptions

from relaunch.adapters.gcp import firestore_store, google_errors
from relaunch.adapters.gcp.firestore_store import TRANSACTION_ROUNDS, FirestoreRunStore
from relaunch.domain.ports import TransientError


@pytest.mark.parametrize(
    "error",
    [
        exceptions.ServiceUnavailable("connection refused"),
        exceptions.DeadlineExceeded("too slow"),
        exceptions.Aborted("lock contention"),
        exceptions.InternalServerError("oops"),
        exceptions.TooManyRequests("quota"),
        exceptions.RetryError("gave up", cause=exceptions.ServiceUnavailable("down")),
    ],
)
def test_what_a_retry_may_fix_becomes_transient(error: Exception) -> None:
    with pytest.raises(TransientError, match="saving run r1: "), google_errors("saving run r1"):
        raise error


def test_a_transaction_that_kept_losing_its_lock_is_transient() -> None:
    with pytest.raises(TransientError, match="Failed to commit transaction"), google_errors("saving run r1"):
        try:
            raise exceptions.Aborted("contention")
        except exceptions.Aborted as last:  # what the Firestore SDK does after its last attempt
            raise ValueError("Failed to commit transaction in 5 attempts.") from last


@pytest.mark.parametrize(
    "error", [exceptions.NotFound("no such topic"), exceptions.InvalidArgument("bad"), ValueError("refused")]
)
def test_permanent_errors_pass_through_unchanged(error: Exception) -> None:
    with pytest.raises(type(error)) as raised, google_errors("saving run r1"):
        raise error
    assert raised.value is error


class CountingClient:
    """Only what FirestoreRunStore._transact uses of a client: a new transaction per round."""

    def __init__(self) -> None:
        self.transactions = 0

    def transaction(self) -> int:
        self.transactions += 1
        return self.transactions


def lose_commits(times: int, error: type[Exception] = ValueError) -> Callable[[int], str]:
    """A transactional function whose first `times` rounds end as the SDK ends one that kept losing its lock."""

    def transactional(round_no: int) -> str:
        if round_no <= times:
            try:
                raise exceptions.Aborted("Transaction lock timeout")
            except exceptions.Aborted as last:
                if error is exceptions.Aborted:  # aborted on a read: the SDK lets it through as it is
                    raise
                raise ValueError("Failed to commit transaction in 5 attempts.") from last
        return f"committed in round {round_no}"

    return transactional


@pytest.fixture
def client() -> CountingClient:
    return CountingClient()


@pytest.fixture
def store(client: CountingClient, monkeypatch: pytest.MonkeyPatch) -> FirestoreRunStore:
    monkeypatch.setattr(firestore_store, "TRANSACTION_PAUSE_S", 0.0)
    made = object.__new__(FirestoreRunStore)
    made._client = client
    return made


@pytest.mark.parametrize("error", [ValueError, exceptions.Aborted])
def test_a_transaction_that_lost_its_lock_races_is_run_again_in_a_new_round(
    store: FirestoreRunStore, error: type[Exception]
) -> None:
    # Seen in CI: four webhook instances recording one content; one lost all 5 of the SDK's attempts and answered 503.
    assert store._transact(lose_commits(TRANSACTION_ROUNDS - 1, error)) == f"committed in round {TRANSACTION_ROUNDS}"


def test_a_transaction_that_loses_every_round_gives_up_as_transient(
    store: FirestoreRunStore, client: CountingClient
) -> None:
    with pytest.raises(TransientError, match="Failed to commit transaction"), google_errors("recording delivery d1"):
        store._transact(lose_commits(TRANSACTION_ROUNDS))
    assert client.transactions == TRANSACTION_ROUNDS


def test_a_refusal_inside_a_transaction_is_not_run_again(store: FirestoreRunStore, client: CountingClient) -> None:
    def refuse(_: int) -> None:
        raise ValueError("delivery d1: run ids already exist")

    with pytest.raises(ValueError, match="already exist"):
        store._transact(refuse)
    assert client.transactions == 1
