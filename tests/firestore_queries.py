"""Record every query the Firestore SDK sends, and the composite index real Firestore would need for each.

As a pytest plugin (`-p tests.firestore_queries`, with RELAUNCH_RECORD_QUERIES=<file>) it wraps the SDK's RunQuery
call, the one every `stream()` goes through, and writes each request as the API's JSON (the REST shape of
RunQueryRequest) to the file when the session ends. `needed_index` is Firestore's documented rule, applied to
that JSON: single-field indexes serve a query that filters by equality only (index merging; `in` is a set of
equalities) or that filters and orders on one field; anything else needs a composite index with the equality fields
first, then the inequality and order-by fields in their order and direction
(https://cloud.google.com/firestore/docs/query-data/index-overview#single-field_indexes,
https://firebase.google.com/docs/firestore/query-data/index-overview#composite_indexes).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

VARIABLE = "RELAUNCH_RECORD_QUERIES"
EQUALITY = {"EQUAL", "IN", "ARRAY_CONTAINS", "ARRAY_CONTAINS_ANY"}  # served by merging single-field indexes
Needed = tuple[str, str, tuple[tuple[str, str], ...]]  # (collection id, query scope, fields with their order)

_recorded: list[dict[str, Any]] = []


def needed_index(request: dict[str, Any]) -> Needed | None:
    """The composite index a RunQueryRequest (API JSON) needs on real Firestore; None when single fields serve it."""
    query = request["structuredQuery"]
    [source] = query["from"]
    scope = "COLLECTION_GROUP" if source.get("allDescendants") else "COLLECTION"
    equal: list[str] = []
    ordered: list[tuple[str, str]] = []
    for name, op in _filters(query.get("where", {})):
        if op in EQUALITY:
            equal.append(name)
        elif all(name != seen for seen, _ in ordered):
            ordered.append((name, "ASCENDING"))  # an inequality orders by its field first, ascending unless told
    for order in query.get("orderBy", []):
        name, direction = order["field"]["fieldPath"], order.get("direction", "ASCENDING")
        ordered = [(seen, d) for seen, d in ordered if seen != name] + [(name, direction)]
    ordered = [(name, d) for name, d in ordered if name != "__name__"]
    fields = [(name, "ASCENDING") for name in sorted(set(equal) - {n for n, _ in ordered})] + ordered
    if not ordered or len(fields) < 2:
        return None
    return source["collectionId"], scope, tuple(fields)


def _filters(where: dict[str, Any]) -> list[tuple[str, str]]:
    if "compositeFilter" in where:
        return [pair for sub in where["compositeFilter"]["filters"] for pair in _filters(sub)]
    if "fieldFilter" in where:
        return [(where["fieldFilter"]["field"]["fieldPath"], where["fieldFilter"]["op"])]
    if "unaryFilter" in where:  # IS_NAN, IS_NULL: equalities; IS_NOT_*: inequalities
        op = where["unaryFilter"]["op"]
        return [(where["unaryFilter"]["field"]["fieldPath"], "EQUAL" if "_NOT_" not in op else op)]
    return []


def pytest_configure(config: pytest.Config) -> None:
    """Wrap the SDK's RunQuery for the whole session."""
    from google.cloud.firestore_v1.services.firestore.client import FirestoreClient
    from google.cloud.firestore_v1.types import RunQueryRequest

    run_query = FirestoreClient.run_query

    def recording(self: FirestoreClient, request: Any = None, **kwargs: Any) -> Any:
        as_sent = RunQueryRequest(request)
        _recorded.append(json.loads(RunQueryRequest.to_json(as_sent, use_integers_for_enums=False)))
        return run_query(self, request=request, **kwargs)

    FirestoreClient.run_query = recording  # type: ignore[method-assign]


def pytest_unconfigure(config: pytest.Config) -> None:
    """Write what was recorded where RELAUNCH_RECORD_QUERIES says."""
    Path(os.environ[VARIABLE]).write_text(json.dumps(_recorded))
