"""Real-format, correctly signed events for a running stack (used by `relaunch simulate` and the demo)."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import requests

from relaunch.triggers.signing import github_signature

ZERO_SHA = "0" * 40


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` and return its stdout (raises on failure)."""
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def push_payload(repo: Path, *, full_name: str, branch: str = "main", before: str | None = None) -> dict[str, Any]:
    """A push payload for the repo's HEAD, shaped as GitHub sends it (see tests/samples/github/push.*.json)."""
    after = git(repo, "rev-parse", "HEAD")
    shas = git(repo, "rev-list", "--reverse", f"{before}..{after}" if before else after).split()
    commits = [_commit(repo, sha, full_name) for sha in shas[-20:]]  # GitHub lists at most 20 commits
    owner, name = full_name.split("/", 1)
    return {
        "ref": f"refs/heads/{branch}",
        "before": before or ZERO_SHA,
        "after": after,
        "created": before is None,
        "deleted": False,
        "forced": False,
        "base_ref": None,
        "compare": f"https://github.com/{full_name}/compare/{(before or ZERO_SHA)[:12]}...{after[:12]}",
        "commits": commits,
        "head_commit": commits[-1] if commits else None,
        "repository": {
            "name": name,
            "full_name": full_name,
            "private": True,
            "owner": {"name": owner, "login": owner},
            "html_url": f"https://github.com/{full_name}",
            "clone_url": repo.resolve().as_uri(),
            "default_branch": branch,
        },
        "pusher": {"name": "relaunch-demo", "email": "demo@relaunch.invalid"},
        "sender": {"login": "relaunch-demo", "type": "User"},
    }


def _commit(repo: Path, sha: str, full_name: str) -> dict[str, Any]:
    message, timestamp, author, email = git(repo, "show", "-s", "--format=%s%x00%aI%x00%an%x00%ae", sha).split("\0")
    changes: dict[str, list[str]] = {"A": [], "M": [], "D": []}
    listing = git(repo, "show", "--format=", "--name-status", "--no-renames", "--root", sha)
    for line in filter(None, listing.splitlines()):
        status, path = line.split("\t", 1)
        changes.setdefault(status[0], []).append(path)
    person = {"name": author, "email": email, "username": author}
    return {
        "id": sha,
        "tree_id": git(repo, "rev-parse", f"{sha}^{{tree}}"),
        "distinct": True,
        "message": message,
        "timestamp": timestamp,
        "url": f"https://github.com/{full_name}/commit/{sha}",
        "author": person,
        "committer": person,
        "added": changes["A"],
        "removed": changes["D"],
        "modified": changes["M"],
    }


def github_headers(event: str, body: bytes, secret: str, delivery: str | None = None) -> dict[str, str]:
    """The headers GitHub sends with a delivery, signed with X-Hub-Signature-256."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/relaunch-simulate",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "1",
        "X-Hub-Signature-256": github_signature(secret, body),
    }


def send_github(
    url: str, event: str, payload: dict[str, Any], secret: str, delivery: str | None = None
) -> requests.Response:
    """POST a signed GitHub delivery to a github_webhook URL."""
    body = json.dumps(payload).encode()
    return requests.post(url, data=body, headers=github_headers(event, body, secret, delivery), timeout=30)
