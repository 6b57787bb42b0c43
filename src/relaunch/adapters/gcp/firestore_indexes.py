"""The composite indexes the Firestore run store's queries need, and the error a query raises without one.

Real Firestore answers a query from its automatic single-field indexes only when the query filters by equality alone
or filters and orders on one field; any other shape fails with FAILED_PRECONDITION "The query requires an index"
until a composite index exists (the emulator never asks). `relaunch deploy` creates every index of REQUIRED_INDEXES;
tests/integration/gcp/test_firestore_indexes.py derives the set from the queries the store really sends while its
tests run, and fails if this tuple says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from relaunch.domain.ports import TransientError

Order = Literal["ASCENDING", "DESCENDING"]


@dataclass(frozen=True)
class Index:
    """A composite index on one of the store's collections (named without the prefix), queried as one collection."""

    collection: str
    fields: tuple[tuple[str, Order], ...]

    def collection_group(self, prefix: str) -> str:
        """The collection id the index is created on, e.g. relaunch_runs."""
        return f"{prefix}_{self.collection}"

    def describe(self, prefix: str) -> str:
        """E.g. `relaunch_runs (pipeline ASCENDING, created_at DESCENDING)`."""
        return f"{self.collection_group(prefix)} ({', '.join(f'{name} {order}' for name, order in self.fields)})"


# list_runs(pipeline=...) and runs_since: one pipeline's runs, newest first (rollback, `relaunch runs --pipeline`;
# the drift cooldown's window)
RUNS_OF_PIPELINE = Index("runs", (("pipeline", "ASCENDING"), ("created_at", "DESCENDING")))
# promotions(pipeline) and promotions(pipeline, environment): a pipeline's (environment's) history, newest first
# (`relaunch history`, `relaunch status`, a rollback in one environment)
PROMOTIONS_OF_PIPELINE = Index("promotions", (("pipeline", "ASCENDING"), ("at", "DESCENDING")))
PROMOTIONS_OF_ENVIRONMENT = Index(
    "promotions", (("environment", "ASCENDING"), ("pipeline", "ASCENDING"), ("at", "DESCENDING"))
)
# list_deliveries(source=...) and list_dead_letters(source=...): one source's deliveries (dead letters), newest first
# (`relaunch inbox [--dead] --source S`)
INBOX_OF_SOURCE = Index("inbox", (("source", "ASCENDING"), ("received_at", "DESCENDING")))
DEAD_LETTERS_OF_SOURCE = Index("dead_letters", (("source", "ASCENDING"), ("written", "DESCENDING")))
REQUIRED_INDEXES: tuple[Index, ...] = (
    RUNS_OF_PIPELINE,
    PROMOTIONS_OF_PIPELINE,
    PROMOTIONS_OF_ENVIRONMENT,
    INBOX_OF_SOURCE,
    DEAD_LETTERS_OF_SOURCE,
)


@contextmanager
def index_errors(what: str, index: Index, prefix: str) -> Iterator[None]:
    """Re-raise Firestore's "requires an index" refusal as TransientError naming the index and how to create it.

    Transient, not permanent: right after `relaunch deploy` the index is still building (minutes) and Firestore
    refuses the query the same way; a redelivered command succeeds once the index is ready, where a permanent error
    would have dead-lettered it.
    """
    from google.api_core.exceptions import FailedPrecondition

    try:
        yield
    except FailedPrecondition as exc:
        if "index" not in str(exc).lower():
            raise
        raise TransientError(
            f"{what}: Firestore has no ready index {index.describe(prefix)}; `relaunch deploy` creates it "
            f"(building one takes minutes): {exc}"
        ) from exc
