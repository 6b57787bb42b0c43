"""The W&B test server answers only what the wandb SDK asks: fields no SDK query selects are refused, as W&B would."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import requests

from relaunch.adapters.wandb.launch import _ITEMS, BEYOND_SDK
from tests.integration.wandb.conftest import API_KEY
from tests.wandb_graphql import parse, paths, sdk_paths
from tests.wandb_server import FakeWandb, basic_auth

README = Path(__file__).resolve().parents[3] / "README.md"

# What relaunch asked before issue 16: a field of its own on a queue item, which no SDK query selects.
HAND_WRITTEN = """
query RelaunchQueueItem($projectName: String!, $entityName: String!, $runQueue: String!, $itemId: ID!) {
  project(name: $projectName, entityName: $entityName) {
    runQueue(name: $runQueue) {
      runQueueItem(id: $itemId) { id state associatedRunId error { message stage } }
    }
  }
}
"""


def post(fake: FakeWandb, query: str, variables: dict[str, str]) -> dict[str, Any]:
    headers = {"Authorization": basic_auth(API_KEY)}
    response = requests.post(f"{fake.url}/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_the_allowlist_is_read_from_the_sdk_python_and_its_service_binary() -> None:
    allowed = sdk_paths()
    item = ("query", "project", "runQueue", "runQueueItem")
    assert {(*item, "id"), (*item, "state"), (*item, "associatedRunId")} <= allowed  # wandb/apis/public/jobs.py
    assert ("mutation", "upsertRunQueue", "success") in allowed  # only in wandb-core
    assert ("mutation", "pushToRunQueueByName", "runSpec") in allowed  # an f-string template in sdk/launch/api.py
    assert (*item, "error") not in allowed


def test_a_field_no_sdk_query_selects_is_refused_with_w_and_b_s_error(fake: FakeWandb) -> None:
    fake.queues.add(("team", "q"))
    variables = {"projectName": "model-registry", "entityName": "team", "runQueue": "q", "itemId": "x"}

    body = post(fake, HAND_WRITTEN, variables)

    assert body.get("data") is None
    messages = [e["message"] for e in body["errors"]]
    assert any(re.match(r'Cannot query field "error" at query\.project\.runQueue\.runQueueItem', m) for m in messages)
    assert any('"message"' in m for m in messages) and any('"stage"' in m for m in messages)


def test_the_sdk_s_own_query_is_answered(fake: FakeWandb) -> None:
    fake.queues.add(("team", "q"))
    query = HAND_WRITTEN.replace("error { message stage }", "__typename")
    variables = {"projectName": "model-registry", "entityName": "team", "runQueue": "q", "itemId": "x"}

    body = post(fake, query.replace("RelaunchQueueItem", "GetRunQueueItem"), variables)

    assert "errors" not in body and body["data"] == {"project": {"runQueue": {"runQueueItem": None}}}


def test_an_unreadable_document_is_a_syntax_error(fake: FakeWandb) -> None:
    body = post(fake, "query Broken { project { runQueue ", {})
    assert "Syntax Error" in body["errors"][0]["message"]


def test_relaunch_selects_beyond_the_sdk_only_what_it_declares_and_the_readme_explains() -> None:
    beyond = {".".join(p) for p in paths(parse(_ITEMS)) if p not in sdk_paths()}
    assert beyond == set(BEYOND_SDK)
    section = README.read_text().split("### W&B Launch", 1)[1].split("\n## ", 1)[0]
    for path in BEYOND_SDK:
        assert f"`{path.rsplit('.', 1)[1]}`" in section, f"README's W&B Launch section must say why {path} is safe"
