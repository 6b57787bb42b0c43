"""The local image builder: a clean checkout of the run's exact commit (or its ref's head), once, even when raced."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from relaunch.adapters.local.builder import BuildError, GitCheckoutBuilder
from relaunch.domain.model import PipelineRun, Trigger


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    for i in (1, 2):
        (path / "train.py").write_text(f"print({i})\n")
        git(path, "add", "-A")
        git(path, "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-qm", f"commit {i}")
    return path


def run_of(repo: Path, *, sha: str | None = None, ref: str | None = None, run_id: str = "p-1") -> PipelineRun:
    trigger = Trigger(kind="push", delivery_key="k", clone_url=str(repo), sha=sha, ref=ref)
    return PipelineRun(id=run_id, pipeline="p", trigger=trigger)


def test_checks_out_the_exact_commit_once(tmp_path: Path, repo: Path) -> None:
    first = git(repo, "rev-list", "--max-parents=0", "HEAD")
    builder = GitCheckoutBuilder(tmp_path / "ws")
    result = builder.build(run_of(repo, sha=first), key="p-1:build")
    assert result.sha == first and Path(result.image or "").joinpath("train.py").read_text() == "print(1)\n"
    again = builder.build(run_of(repo, sha=first), key="p-1:build")
    assert again == result


def test_a_run_without_a_commit_builds_its_refs_head_and_says_which(tmp_path: Path, repo: Path) -> None:
    result = GitCheckoutBuilder(tmp_path / "ws").build(run_of(repo, ref="refs/heads/main"), key="k")
    assert result.sha == git(repo, "rev-parse", "HEAD")
    with pytest.raises(BuildError, match="does not exist"):
        GitCheckoutBuilder(tmp_path / "ws").build(run_of(repo, ref="refs/heads/nope", run_id="p-2"), key="k2")


def test_concurrent_builds_of_one_run_both_succeed_with_one_checkout(tmp_path: Path, repo: Path) -> None:
    """A redelivered command can build the same run twice at once: neither may fail or delete the other's tree."""
    root = tmp_path / "ws"
    head = git(repo, "rev-parse", "HEAD")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: GitCheckoutBuilder(root).build(run_of(repo, sha=head), "k"), range(4)))
    assert {r.image for r in results} == {str(root / "p-1")} and {r.sha for r in results} == {head}
    assert (root / "p-1" / "train.py").read_text() == "print(2)\n"
    assert sorted(p.name for p in root.iterdir()) == ["p-1"]  # no attempt's temporary folder is left behind
