"""Where two commits stand in a repository's history, asked of git itself: ports.CommitHistory for the embedded stack.

Each repository URL gets a bare cache (its folder named by a hash of the URL) that holds only the commits asked
about: both are fetched by SHA (git's protocol v2 serves any commit it has, GitHub too), then
`git merge-base --is-ancestor` answers both ways. A commit the repository will not serve ("not our ref") is off its
history: "diverged", as a force push leaves the old champion's commit. Every SHA is checked before git runs, the URL
goes after `--`, git speaks only https, ssh and file and never prompts (the builder's rules).
"""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from relaunch.adapters.local.builder import git_env
from relaunch.domain.gitnames import is_sha
from relaunch.domain.ports import TransientError

TIMEOUT_S = 120
_UNKNOWN_COMMIT = ("not our ref", "no such remote ref", "couldn't find remote ref")
_PASSING = ("could not resolve host", "failed to connect", "timed out", "connection reset", "returned error: 5")


class LocalGitHistory:
    """Answers ports.CommitHistory with git, from a per-repository bare cache under `cache`."""

    def __init__(self, cache: Path) -> None:
        self._cache = cache

    def relation(self, repo: str, clone_url: str | None, base: str, head: str) -> str:
        """`head` against `base` (see ports.CommitHistory); ValueError when the repository cannot be read."""
        if not (is_sha(base) and is_sha(head)) or not clone_url:
            return "unknown"
        if base == head:
            return "identical"
        mirror = self._cache / (hashlib.sha256(clone_url.encode()).hexdigest()[:24] + ".git")
        with _locked(mirror):
            if not (mirror / "HEAD").exists():
                _git("init", "--quiet", "--bare", "--", str(mirror))
            if not all(_fetched(mirror, clone_url, sha) for sha in (base, head)):
                return "diverged"
        if _is_ancestor(mirror, head, base):
            return "behind"
        return "ahead" if _is_ancestor(mirror, base, head) else "diverged"


@contextmanager
def _locked(mirror: Path) -> Iterator[None]:
    """One process at a time fetches into a cache (git's own locks cover refs, not a fetch as a whole)."""
    mirror.parent.mkdir(parents=True, exist_ok=True)
    with open(mirror.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _fetched(mirror: Path, clone_url: str, sha: str) -> bool:
    """Has the cache the commit now (fetched if need be)? False when the repository does not have it."""
    if _has(mirror, sha):
        return True
    proc = _run("-C", str(mirror), "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--", clone_url, sha)
    if proc.returncode == 0:
        return _has(mirror, sha)
    said = proc.stderr.strip()
    if any(s in said.lower() for s in _UNKNOWN_COMMIT):
        return False
    if any(s in said.lower() for s in _PASSING):
        raise TransientError(f"git fetch could not reach the repository: {said[-200:]}")
    raise ValueError(f"git fetch failed: {said[-200:]}")


def _has(mirror: Path, sha: str) -> bool:
    return _run("-C", str(mirror), "cat-file", "-e", "--end-of-options", f"{sha}^{{commit}}").returncode == 0


def _is_ancestor(mirror: Path, older: str, newer: str) -> bool:
    proc = _run("-C", str(mirror), "merge-base", "--is-ancestor", "--end-of-options", older, newer)
    if proc.returncode not in (0, 1):
        raise ValueError(f"git merge-base failed: {proc.stderr.strip()[-200:]}")
    return proc.returncode == 0


def _git(*args: str) -> None:
    proc = _run(*args)
    if proc.returncode != 0:
        raise ValueError(f"git {args[0]} failed: {proc.stderr.strip()[-200:]}")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=TIMEOUT_S, env=git_env())
    except FileNotFoundError:
        raise ValueError("git is not installed here (RELAUNCH_HISTORY=github asks GitHub instead)") from None
    except subprocess.TimeoutExpired:
        raise TransientError(f"git {args[2] if args[0] == '-C' else args[0]} timed out after {TIMEOUT_S} s") from None
