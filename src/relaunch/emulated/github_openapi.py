"""GitHub's OpenAPI description (the octokit cut in openapi/), and a check of requests against it.

A small validator for the parts of OpenAPI 3.0 the cut uses: path templates, required and unknown properties,
types, enums, nullable, oneOf, maxLength and maxItems. Where GitHub states a limit in prose rather than in the
schema ("The maximum description length is 140 characters"), the prose is read too.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

OPENAPI = Path(__file__).parent / "openapi" / "github-openapi-statuses-checkruns.json"


@dataclass
class Recorded:
    """One request as the GitHub stand-in saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@cache
def openapi_operations() -> dict[str, Any]:
    """The operations of the OpenAPI cut, keyed "METHOD /path/template"."""
    operations: dict[str, Any] = json.loads(OPENAPI.read_text())["operations"]
    return operations


def example(operation: str, status: str, name: str) -> dict[str, Any]:
    """A fresh copy of one response example of the cut (what the stand-in answers, patched with what was sent)."""
    content = openapi_operations()[operation]["responses"][status]["content"]["application/json"]
    answer: dict[str, Any] = copy.deepcopy(content["examples"][name]["value"])
    return answer


# Read-only operations the notifier needs that the cut does not carry, with their documented query parameters.
# "List deployments", https://docs.github.com/rest/deployments/deployments#list-deployments (no request body).
# "List deployment statuses", https://docs.github.com/rest/deployments/statuses#list-deployment-statuses (no body).
# "Get repository permissions for a user", https://docs.github.com/rest/collaborators/collaborators (no query, no body).
# "Compare two commits", https://docs.github.com/rest/commits/commits#compare-two-commits (basehead is BASE...HEAD).
# "Get a repository", https://docs.github.com/rest/repos/repos#get-a-repository (no query, no body).
# "Get a check run", https://docs.github.com/rest/checks/runs#get-a-check-run (no query, no body).
SUPPLEMENT = {
    "GET /repos/{owner}/{repo}/deployments": {"sha", "ref", "task", "environment", "per_page", "page"},
    "GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses": {"per_page", "page"},
    "GET /repos/{owner}/{repo}/collaborators/{username}/permission": set(),
    "GET /repos/{owner}/{repo}/compare/{basehead}": {"per_page", "page"},
    "GET /repos/{owner}/{repo}": set(),
    "GET /repos/{owner}/{repo}/check-runs/{check_run_id}": set(),
}

# Limits GitHub enforces (422 "description is too long (maximum is 140 characters)") but the schema leaves out.
ENFORCED = {("POST /repos/{owner}/{repo}/statuses/{sha}", "description"): 140}

_PROSE_LIMIT = re.compile(r"maximum (?:description )?length(?:\*\*)?(?::| is) (\d+) characters", re.IGNORECASE)
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def operation_for(method: str, path: str) -> str | None:
    """The "METHOD /template" of the cut (or the supplement) that this request matches."""
    for key in [*openapi_operations(), *SUPPLEMENT]:
        verb, template = key.split(" ", 1)
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if verb == method and re.match(pattern, path):
            return key
    return None


def problems(request: Recorded) -> list[str]:
    """Everything wrong with a request, as readable lines (empty if it conforms)."""
    key = operation_for(request.method, request.path)
    if key is None:
        return [f"{request.method} {request.path}: no such operation in the OpenAPI cut"]
    if key in SUPPLEMENT:
        unknown = set(request.query) - SUPPLEMENT[key]
        return [f"{key}: unknown query parameter {sorted(unknown)}"] if unknown else []
    documented = {p["name"] for p in openapi_operations()[key].get("parameters", []) if p.get("in") == "query"}
    undocumented = sorted(set(request.query) - documented)
    found = [f"{key}: unexpected query {undocumented}"] if undocumented else []
    return found + body_problems(request)


def body_problems(request: Recorded) -> list[str]:
    """What is wrong with a request's body (GitHub answers 422 to it); empty for an operation the cut lacks."""
    key = operation_for(request.method, request.path)
    if key is None or key in SUPPLEMENT:
        return []
    body_spec = openapi_operations()[key].get("requestBody")
    if body_spec is None:
        return [f"{key}: takes no body"] if request.body is not None else []
    if request.body is None:
        return [f"{key}: body required"] if body_spec.get("required") else []
    schema = body_spec["content"]["application/json"]["schema"]
    found = _check(request.body, schema, key)
    for (operation, field), limit in ENFORCED.items():
        value = request.body.get(field) if isinstance(request.body, dict) else None
        if operation == key and isinstance(value, str) and len(value) > limit:
            found.append(f"{key}.{field}: {len(value)} characters > GitHub's limit {limit}")
    return found


def assert_conforms(requests: list[Recorded]) -> None:
    """Fail with every problem of every request."""
    found = [line for request in requests for line in problems(request)]
    assert not found, "requests that GitHub's OpenAPI description refuses:\n" + "\n".join(found)


def _check(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    if value is None:
        return [] if schema.get("nullable") else [f"{where}: null is not allowed"]
    if "oneOf" in schema:
        matching = [s for s in schema["oneOf"] if not _check(value, s, where)]
        return [] if len(matching) == 1 else [f"{where}: matches {len(matching)} of oneOf, not exactly one"]
    kind = schema.get("type")
    checker = {"object": _object, "array": _array, "string": _string}.get(kind or "", _scalar)
    return checker(value, schema, where)


def _object(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: expected an object, got {type(value).__name__}"]
    properties = schema.get("properties", {})
    found = [f"{where}.{name}: required" for name in schema.get("required", []) if name not in value]
    if properties and schema.get("additionalProperties") is not True:
        found += [f"{where}.{name}: unknown property" for name in value if name not in properties]
    for name, item in value.items():
        if name in properties:
            found += _check(item, properties[name], f"{where}.{name}")
    return found


def _array(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    if not isinstance(value, list):
        return [f"{where}: expected an array, got {type(value).__name__}"]
    found = (
        [f"{where}: {len(value)} items > maxItems {schema['maxItems']}"]
        if len(value) > schema.get("maxItems", len(value))
        else []
    )
    for index, item in enumerate(value):
        found += _check(item, schema.get("items", {}), f"{where}[{index}]")
    return found


def _string(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    if not isinstance(value, str):
        return [f"{where}: expected a string, got {type(value).__name__}"]
    found = []
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: {value!r} not one of {schema['enum']}")
    prose = _PROSE_LIMIT.search(schema.get("description", ""))
    limits = [schema.get("maxLength"), int(prose.group(1)) if prose else None]
    limit = min((x for x in limits if x is not None), default=None)
    if limit is not None and len(value) > limit:
        found.append(f"{where}: {len(value)} characters > maxLength {limit}")
    if schema.get("format") == "date-time" and not _DATE_TIME.match(value):
        found.append(f"{where}: {value!r} is not a date-time")
    return found


def _scalar(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    types: dict[str, type | tuple[type, ...]] = {"boolean": bool, "integer": int, "number": (int, float)}
    expected = types.get(schema.get("type", ""))
    if expected is None:
        return []  # no type: anything goes
    if isinstance(value, bool) and schema["type"] != "boolean" or not isinstance(value, expected):
        return [f"{where}: expected {schema['type']}, got {type(value).__name__}"]
    return [f"{where}: {value!r} not one of {schema['enum']}"] if value not in schema.get("enum", [value]) else []
