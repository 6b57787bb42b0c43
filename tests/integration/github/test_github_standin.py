"""The GitHub stand-in refuses a body GitHub's OpenAPI description does not allow, as GitHub does (422)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from relaunch.emulated.github import serve

SHA = "9f3c1d2e4b5a69788796a5b4c3d2e1f001234567"


def post(url: str, body: object, token: str = "t") -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"state": "done"}, ".state: 'done' not one of"),
        ({"state": "success", "colour": "red"}, ".colour: unknown property"),
        ({"context": "relaunch/gate"}, ".state: required"),
    ],
)
def test_a_status_github_would_refuse_is_a_422_naming_the_field(body: object, named: str) -> None:
    with serve("t") as fake:
        status, answer = post(f"{fake.url}/repos/o/r/statuses/{SHA}", body)
    assert status == 422 and str(answer["message"]).startswith("Invalid request.")
    assert named in str(answer["message"]) and len(fake.refused) == 1


def test_credentials_are_checked_before_the_body() -> None:
    with serve("t") as fake:
        status, _ = post(f"{fake.url}/repos/o/r/statuses/{SHA}", {"state": "done"}, token="wrong")
    assert status == 401 and fake.refused == []


def test_a_conforming_status_is_created() -> None:
    with serve("t") as fake:
        status, answer = post(f"{fake.url}/repos/o/r/statuses/{SHA}", {"state": "success", "context": "c"})
    assert (status, answer["state"], fake.refused) == (201, "success", [])
