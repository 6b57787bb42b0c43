"""The request validator itself: it must refuse what GitHub's OpenAPI description refuses."""

from __future__ import annotations

from typing import Any

import pytest

from tests.github_server import Recorded
from tests.integration.github.openapi import problems

SHA = "9f3c1d2e4b5a69788796a5b4c3d2e1f001234567"


def post(path: str, body: Any, query: dict[str, list[str]] | None = None) -> Recorded:
    return Recorded("POST", path, query or {}, {}, body)


def test_a_conforming_status_has_no_problems() -> None:
    body = {"state": "success", "context": "relaunch/gate", "description": "ok", "target_url": None}
    assert problems(post(f"/repos/o/r/statuses/{SHA}", body)) == []


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (post("/repos/o/r/commits", {}), "no such operation"),
        (Recorded("DELETE", f"/repos/o/r/statuses/{SHA}", {}, {}, None), "no such operation"),
        (post(f"/repos/o/r/statuses/{SHA}", {"context": "x"}), ".state: required"),
        (post(f"/repos/o/r/statuses/{SHA}", {"state": "done"}), "not one of"),
        (post(f"/repos/o/r/statuses/{SHA}", {"state": "success", "colour": "red"}), ".colour: unknown property"),
        (post(f"/repos/o/r/statuses/{SHA}", {"state": "success", "description": "x" * 141}), "limit 140"),
        (post(f"/repos/o/r/statuses/{SHA}", {"state": "success"}, {"x": ["1"]}), "unexpected query"),
        (post(f"/repos/o/r/statuses/{SHA}", None), "body required"),
        (post("/repos/o/r/check-runs", {"name": "n", "head_sha": SHA, "conclusion": "passed"}), "not one of"),
        (post("/repos/o/r/check-runs", {"name": "n", "head_sha": SHA, "output": {"summary": "x" * 65536}}), "65535"),
        (post("/repos/o/r/check-runs", {"name": "n", "head_sha": SHA, "completed_at": "yesterday"}), "date-time"),
        (post("/repos/o/r/deployments", {"ref": SHA, "auto_merge": "false"}), "expected boolean"),
        (post("/repos/o/r/deployments", {"ref": SHA, "payload": 3}), "oneOf"),
        (post("/repos/o/r/deployments", {"ref": SHA, "required_contexts": [1]}), "expected a string"),
        (post("/repos/o/r/deployments/1/statuses", {"state": "running"}), "not one of"),
        (post("/repos/o/r/deployments/1/statuses", {"state": "success", "description": "x" * 141}), "maxLength 140"),
        (Recorded("GET", "/repos/o/r/deployments", {"since": ["1"]}, {}, None), "unknown query parameter"),
    ],
)
def test_each_kind_of_violation_is_reported(request_: Recorded, expected: str) -> None:
    found = problems(request_)
    assert any(expected in line for line in found), found
