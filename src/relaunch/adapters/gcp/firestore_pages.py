"""Firestore listings read a page at a time: each request is `limit` documents starting after the previous page's last
(`start_after`, a cursor on the query's order), never one unbounded stream of a whole collection.

A stream that returns every match at once grows with the store: its RPC runs as long as the collection is large,
and it is one deadline away from failing whole. Pages keep each request small and its cost fixed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

PAGE = 500  # documents per request: a few hundred KB of runs, one round trip per page


def pages(query: Any) -> Iterator[Any]:
    """Every snapshot the query matches, in its order, read PAGE at a time.

    The query must be ordered (`order_by`): Firestore appends `__name__` to its order, so a cursor on the last
    snapshot of a page is exact even where many documents share a value. A query of equality filters alone can be
    ordered by `__name__` without a composite index.
    """
    size, last = PAGE, None
    while True:
        page = list((query if last is None else query.start_after(last)).limit(size).stream())
        yield from page
        if len(page) < size:
            return
        last = page[-1]
