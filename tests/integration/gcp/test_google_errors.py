"""How the GCP adapters classify the Google SDK's errors (real api_core exception types, no server needed)."""

from __future__ import annotations

import pytest
from google.api_core import exceptions

from relaunch.adapters.gcp import google_errors
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
