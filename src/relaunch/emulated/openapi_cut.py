"""Adds operations to the vendored OpenAPI cut (openapi/), cut from GitHub's own description; it never changes one.

Run it on @octokit/openapi's `generated/api.github.com.deref.json` of the version the cut names (`npm pack
@octokit/openapi@23.0.2`, then untar): `python -m relaunch.emulated.openapi_cut DEREF_JSON "GET /user" ...`.
Each operation keeps what the stand-in and its validator read: operationId, parameters (the query ones are checked),
requestBody and the 2xx responses.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from relaunch.emulated.github_openapi import OPENAPI

KEPT = ("operationId", "parameters", "requestBody", "responses")


def cut(description: dict[str, Any], operation: str) -> dict[str, Any]:
    """One operation ("METHOD /template") of a dereferenced description, with its 2xx responses only."""
    method, template = operation.split(" ", 1)
    found = description["paths"].get(template, {}).get(method.lower())
    if found is None:
        raise SystemExit(f"openapi_cut: {operation!r} is not in the description")
    kept = {key: found[key] for key in KEPT if key in found}
    kept["responses"] = {status: answer for status, answer in found["responses"].items() if status.startswith("2")}
    return kept


def add(description: dict[str, Any], vendored: dict[str, Any], operations: list[str]) -> list[str]:
    """Add the operations the cut lacks (from the same version only); the names of those added."""
    version = description["info"]["version"]
    if version != vendored["openapi_info"]["version"]:
        raise SystemExit(f"openapi_cut: description {version} is not the cut's {vendored['openapi_info']['version']}")
    added = [op for op in operations if op not in vendored["operations"]]
    for operation in added:
        vendored["operations"][operation] = cut(description, operation)
    return added


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    description = json.loads(Path(argv[0]).read_text())
    vendored = json.loads(OPENAPI.read_text())  # read right before writing: only ever adds
    added = add(description, vendored, argv[1:])
    OPENAPI.write_text(json.dumps(vendored, indent=1, ensure_ascii=False))  # as vendored: no final newline
    print("added:", ", ".join(added) or "nothing")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
