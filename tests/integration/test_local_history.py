"""LocalGitHistory: where two commits stand, asked of git from a bare cache holding only the commits asked about."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from relaunch.adapters.local.history import LocalGitHistory
from relaunch.domain.ports import TransientError
from tests.integration.test_local_builder import git

NEVER = "e" * 40


def commit(repo: Path, n: int) -> str:
    (repo / "train.py").write_text(f"print({n})\n")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-qm", f"commit {n}")
    return git(repo, "rev-parse", "HEAD")


def force_pushed(tmp_path: Path) -> tuple[Path, list[str]]:
    """A repository whose main went 1, 2, 3, then was force-pushed back to 1 and went on to 4; the four commits."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    shas = [commit(repo, n) for n in (1, 2, 3)]
    git(repo, "reset", "-q", "--hard", shas[0])
    shas.append(commit(repo, 4))
    return repo, shas


@pytest.fixture
def line(tmp_path: Path) -> tuple[Path, list[str]]:
    return force_pushed(tmp_path)


def test_ahead_behind_identical_and_a_force_pushed_branch(tmp_path: Path, line: tuple[Path, list[str]]) -> None:
    repo, (one, two, three, four) = line
    history = LocalGitHistory(tmp_path / "cache")
    url = repo.as_uri()
    assert history.relation("o/r", url, three, one) == "behind"
    assert history.relation("o/r", url, one, two) == "ahead"
    assert history.relation("o/r", url, four, four) == "identical"
    assert history.relation("o/r", url, three, four) == "diverged"  # 3 is gone from main, 4 is not after it
    assert history.relation("o/r", url, four, one) == "behind"


def test_a_commit_the_repository_never_had_is_off_its_history(tmp_path: Path, line: tuple[Path, list[str]]) -> None:
    repo, shas = line
    assert LocalGitHistory(tmp_path / "cache").relation("o/r", repo.as_uri(), NEVER, shas[-1]) == "diverged"
    assert LocalGitHistory(tmp_path / "cache").relation("o/r", repo.as_uri(), shas[-1], NEVER) == "diverged"


def test_the_cache_fetches_a_commit_once_and_learns_new_ones(tmp_path: Path, line: tuple[Path, list[str]]) -> None:
    repo, (one, _, _, four) = line
    history = LocalGitHistory(tmp_path / "cache")
    assert history.relation("o/r", repo.as_uri(), one, four) == "ahead"
    five = commit(repo, 5)  # pushed after the cache was made
    assert history.relation("o/r", repo.as_uri(), five, four) == "behind"
    [cache] = (tmp_path / "cache").glob("*.git")
    assert git(cache, "cat-file", "-t", five) == "commit"


@pytest.mark.parametrize(
    ("base", "head", "url"),
    [
        ("--upload-pack=touch /tmp/x", "a" * 40, "file:///x"),
        ("a" * 40, "HEAD", "file:///x"),
        ("a" * 40, "b" * 40, None),
    ],
)
def test_names_that_are_not_two_shas_and_a_url_are_unknown_before_git_runs(
    tmp_path: Path, base: str, head: str, url: str | None
) -> None:
    assert LocalGitHistory(tmp_path / "cache").relation("o/r", url, base, head) == "unknown"
    assert not (tmp_path / "cache").exists()


def test_a_repository_that_is_not_there_is_refused_and_one_out_of_reach_is_transient(tmp_path: Path) -> None:
    history = LocalGitHistory(tmp_path / "cache")
    with pytest.raises(ValueError, match="git fetch failed"):
        history.relation("o/r", (tmp_path / "nope").as_uri(), "a" * 40, "b" * 40)
    with pytest.raises(TransientError):
        history.relation("o/r", "https://127.0.0.1:9/o/r.git", "a" * 40, "b" * 40)
    with pytest.raises(ValueError, match="git fetch failed"):  # ext:: runs a command: git may not speak it
        history.relation("o/r", "ext::sh -c touch% /tmp/relaunch-pwned", "a" * 40, "b" * 40)


def test_concurrent_questions_share_one_cache(tmp_path: Path, line: tuple[Path, list[str]]) -> None:
    repo, (one, two, three, four) = line
    history = LocalGitHistory(tmp_path / "cache")
    asks = [(three, one), (one, two), (three, four), (four, one)] * 3
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda pair: history.relation("o/r", repo.as_uri(), *pair), asks))
    assert answers == ["behind", "ahead", "diverged", "behind"] * 3
