"""The composite indexes deploy creates are exactly those the Firestore store's queries need, and a missing one is a
clear, retried error.

The emulator never asks for an index, so the needed set is derived from the queries themselves: the store's own
tests (the Firestore contract suites and tests/integration/gcp/test_firestore_store.py) run in a child pytest that
records every RunQuery request the SDK sends (tests/firestore_queries.py), and Firestore's documented rule gives the
composite index each one needs. That set must equal what `relaunch deploy` creates, read from the plan's commands.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions

from relaunch.adapters.gcp.firestore_store import FirestoreRunStore
from relaunch.config_files import load_specs
from relaunch.deploy.infra_file import load_infra
from relaunch.deploy.plan import build_plan
from relaunch.domain.ports import TransientError
from tests.firestore_queries import VARIABLE, Needed, needed_index

ROOT = Path(__file__).resolve().parents[3]
STORE_TESTS = ["tests/contract", "tests/integration/gcp/test_firestore_store.py", "-k", "firestore"]


def planned_indexes() -> set[Needed]:
    """The composite indexes the example deploy plan creates, read back from its `gcloud ... create` commands."""
    specs = load_specs(ROOT / "pipelines")
    plan = build_plan(load_infra(ROOT / "triggers" / "relaunch.yaml", specs), specs)
    found = set()
    for step in plan.steps:
        argv = [a for a in step.create.argv if isinstance(a, str)] if step.create else []
        if argv[1:5] == ["firestore", "indexes", "composite", "create"]:
            flags = [a.split("=", 1) for a in argv if a.startswith("--")]
            group = next(value for name, value in flags if name == "--collection-group")
            scope = next(value for name, value in flags if name == "--query-scope").upper().replace("-", "_")
            configs = [
                dict(kv.split("=") for kv in value.split(",")) for name, value in flags if name == "--field-config"
            ]
            found.add((group, scope, tuple((c["field-path"], c["order"].upper()) for c in configs)))
    return found


def test_deploy_creates_every_index_the_store_queries_need_and_no_other(tmp_path: Path) -> None:
    record = tmp_path / "queries.json"
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-n",
            "0",
            "-p",
            "tests.firestore_queries",
            "-p",
            "no:cacheprovider",
            *STORE_TESTS,
        ],
        cwd=ROOT,
        env={**os.environ, VARIABLE: str(record)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert child.returncode == 0, child.stdout[-3000:]
    queries: list[dict[str, Any]] = json.loads(record.read_text())
    if not queries:
        pytest.skip(f"the store's tests sent no query (no emulator here?): {child.stdout.splitlines()[-1]}")
    needed = {index for query in queries if (index := needed_index(query))}
    assert needed, "the store orders runs of one pipeline by time: at least that query needs a composite index"
    assert planned_indexes() == needed


def _query(where: dict[str, Any] | None, *orders: tuple[str, str], group: bool = False) -> dict[str, Any]:
    query: dict[str, Any] = {"from": [{"collectionId": "c", "allDescendants": group}]}
    query.update({"where": where} if where else {})
    query["orderBy"] = [{"field": {"fieldPath": name}, "direction": d} for name, d in orders]
    return {"structuredQuery": query}


def _eq(name: str, op: str = "EQUAL") -> dict[str, Any]:
    return {"fieldFilter": {"field": {"fieldPath": name}, "op": op, "value": {"stringValue": "x"}}}


def _and(*filters: dict[str, Any]) -> dict[str, Any]:
    return {"compositeFilter": {"op": "AND", "filters": list(filters)}}


@pytest.mark.parametrize(
    ("request_json", "index"),
    [
        (_query(None), None),  # a whole collection (a timeline)
        (_query(None, ("at", "DESCENDING")), None),  # one field ordered: its single-field index
        (_query(_eq("step")), None),
        (_query(_and(_eq("pipeline"), _eq("state", "IN"))), None),  # equalities only: merged single-field indexes
        (_query(_eq("at", "GREATER_THAN"), ("at", "DESCENDING")), None),
        (
            _query(_eq("pipeline"), ("created_at", "DESCENDING")),
            ("c", "COLLECTION", (("pipeline", "ASCENDING"), ("created_at", "DESCENDING"))),
        ),
        (
            _query(_and(_eq("b"), _eq("a"), _eq("t", "LESS_THAN")), group=True),
            ("c", "COLLECTION_GROUP", (("a", "ASCENDING"), ("b", "ASCENDING"), ("t", "ASCENDING"))),
        ),
        (
            _query(None, ("x", "ASCENDING"), ("y", "DESCENDING"), ("__name__", "DESCENDING")),
            ("c", "COLLECTION", (("x", "ASCENDING"), ("y", "DESCENDING"))),
        ),
    ],
)
def test_the_index_rule_follows_firestores_documented_one(request_json: dict[str, Any], index: Needed | None) -> None:
    assert needed_index(request_json) == index


@pytest.mark.parametrize(
    "message",
    [
        "The query requires an index. You can create it here: https://console.firebase.google.com/v1/r/project/p/"
        "firestore/indexes?create_composite=Ck9wcm9qZWN0cy9w",
        "The query requires an index. That index is currently building and cannot be used yet.",
    ],
)
def test_a_missing_index_is_retried_and_named_not_dead_lettered(
    store: FirestoreRunStore, monkeypatch: pytest.MonkeyPatch, message: str
) -> None:
    from google.cloud.firestore_v1.services.firestore.client import FirestoreClient

    def refuse(self: FirestoreClient, *args: object, **kwargs: object) -> object:
        raise exceptions.FailedPrecondition(message)  # what real Firestore answers; the emulator never does

    monkeypatch.setattr(FirestoreClient, "run_query", refuse)
    with pytest.raises(TransientError) as raised:
        store.list_runs(pipeline="digits")
    said = str(raised.value)
    assert "relaunch_runs (pipeline ASCENDING, created_at DESCENDING)" in said and "`relaunch deploy`" in said


def test_another_failed_precondition_stays_permanent(store: FirestoreRunStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from google.cloud.firestore_v1.services.firestore.client import FirestoreClient

    def refuse(self: FirestoreClient, *args: object, **kwargs: object) -> object:
        raise exceptions.FailedPrecondition("the database is in Datastore mode")

    monkeypatch.setattr(FirestoreClient, "run_query", refuse)
    with pytest.raises(exceptions.FailedPrecondition):
        store.list_runs(pipeline="digits")
