"""The GitHub stand-in's check runs: created, read and updated as api.github.com does, kept for tests to read.

"Create a check run" answers the OpenAPI cut's example patched with what was sent and a new id; "Get a check run"
answers what is kept; "Update a check run" merges the body into it (`output` and `actions`, when sent, replace the
kept ones whole, as GitHub's do). A check run of another repository is GitHub's 404.
"""

from __future__ import annotations

import copy
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from relaunch.emulated.github_openapi import Recorded, example

_REPO = r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
_CREATE = re.compile(_REPO + r"/check-runs$")
_ONE = re.compile(_REPO + r"/check-runs/(?P<id>\d+)$")
_NOT_FOUND = {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}

Answer = tuple[int, Any, dict[str, str]]


@dataclass
class CheckRuns:
    """Every repository's check runs by id."""

    items: dict[int, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, request: Recorded, base_url: str) -> Answer | None:
        """GitHub's answer to a check-run request, or None for any other request."""
        if request.method == "POST" and (m := _CREATE.match(request.path)):
            return 201, self._create(f"{m['owner']}/{m['repo']}", request.body or {}, base_url), {}
        if request.method in ("GET", "PATCH") and (m := _ONE.match(request.path)):
            with self.lock:
                kept = self.items.get(int(m["id"]))
                if kept is None or kept["repo"] != f"{m['owner']}/{m['repo']}":
                    return 404, _NOT_FOUND, {}
                if request.method == "PATCH":
                    _merge(kept, request.body or {})
                return 200, _public(kept), {}
        return None

    def of(self, repo: str, name: str | None = None) -> list[dict[str, Any]]:
        """The check runs of a repository (of one name), oldest first, with the `actions` GitHub shows as buttons."""
        with self.lock:
            found = [c for c in self.items.values() if c["repo"] == repo and name in (None, c["name"])]
            return [copy.deepcopy(c) for c in sorted(found, key=lambda c: c["id"])]

    def _create(self, repo: str, body: dict[str, Any], base_url: str) -> dict[str, Any]:
        answer = example("POST /repos/{owner}/{repo}/check-runs", "201", "example-of-completed-conclusion")
        with self.lock:
            check_run_id = len(self.items) + 1
            answer.update({k: v for k, v in body.items() if k != "output"})
            answer["output"].update(body.get("output", {}))
            answer.update(id=check_run_id, repo=repo, url=f"{base_url}/repos/{repo}/check-runs/{check_run_id}")
            answer.setdefault("actions", [])
            self.items[check_run_id] = answer
            return _public(answer)


def _merge(kept: dict[str, Any], body: dict[str, Any]) -> None:
    for key, value in body.items():
        if key == "output":
            kept["output"] = {**kept["output"], "title": None, "summary": None, "text": None, **value}
        else:
            kept[key] = value


def _public(kept: dict[str, Any]) -> dict[str, Any]:
    """The check run as GitHub's API answers it: its schema has no `actions` (they are buttons on the page)."""
    return {k: copy.deepcopy(v) for k, v in kept.items() if k not in ("repo", "actions")}
