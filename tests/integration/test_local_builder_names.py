"""Issue 13: the local builder checks every SHA and ref before git runs, and never lets a value read as an option."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from relaunch.adapters.local.builder import BuildError, GitCheckoutBuilder
from relaunch.domain.model import PipelineRun, Trigger
from tests.integration.test_local_builder import git

REAL_GIT = shutil.which("git") or "git"
# A `git` that records its argv and environment, then runs the real git: a fake in front of the real thing.
RECORDING_GIT = """#!{python}
import json, os, sys
env = {{k: v for k, v in os.environ.items() if k.startswith("GIT_")}}
with open({log!r}, "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "env": env}}) + "\\n")
os.execv({git!r}, ["git", *sys.argv[1:]])
"""


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text("print(1)\n")
    git(path, "add", "-A")
    git(path, "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-qm", "one")
    return path


@pytest.fixture()
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The log of every git the builder runs (a recording git first on PATH)."""
    bin_dir, log = tmp_path / "bin", tmp_path / "git-calls.jsonl"
    bin_dir.mkdir()
    fake = bin_dir / "git"
    fake.write_text(RECORDING_GIT.format(python=sys.executable, log=str(log), git=REAL_GIT))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(REAL_GIT).parent}")
    return log


def recorded(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def run_of(url: str, **trigger: object) -> PipelineRun:
    fields: dict[str, object] = {"kind": "push", "delivery_key": "k", "clone_url": url, **trigger}
    return PipelineRun(id="p-1", pipeline="p", trigger=Trigger(**fields))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "trigger",
    [
        {"sha": "--orphan=pwned"},
        {"sha": "HEAD"},
        {"sha": "main"},
        {"ref": "--upload-pack=touch /tmp/x"},
        {"ref": "refs/heads/../x"},
        {"ref": "refs/heads/-x"},
        {"ref": "main@{1}"},
        {"sha": "a" * 40, "base_sha": "--orphan=pwned"},
    ],
)
def test_an_option_shaped_or_malformed_sha_or_ref_is_refused_before_any_git_runs(
    tmp_path: Path, repo: Path, calls: Path, trigger: dict
) -> None:
    with pytest.raises(BuildError) as err:
        GitCheckoutBuilder(tmp_path / "ws").build(run_of(repo.as_uri(), **trigger), key="k")
    assert ("sha" in str(err.value) or "ref" in str(err.value)) and recorded(calls) == []
    assert not (tmp_path / "ws" / "p-1").exists()


def test_every_git_call_ends_its_options_and_runs_without_prompts_or_exotic_transports(
    tmp_path: Path, repo: Path, calls: Path
) -> None:
    head = git(repo, "rev-parse", "HEAD")
    calls.unlink()  # only the builder's calls
    result = GitCheckoutBuilder(tmp_path / "ws").build(run_of(repo.as_uri(), ref="refs/heads/main"), key="k")
    assert result.sha == head
    runs = recorded(calls)
    assert runs and all("--" in call["argv"] or "--end-of-options" in call["argv"] for call in runs)
    for call in runs:
        assert call["env"].get("GIT_TERMINAL_PROMPT") == "0"
        assert set(call["env"].get("GIT_ALLOW_PROTOCOL", "").split(":")) == {"https", "ssh", "file"}


@pytest.mark.parametrize("url", ["ext::sh -c touch% {marker}", "--upload-pack=touch {marker}", "fd::0"])
def test_a_clone_url_cannot_run_a_command(tmp_path: Path, url: str) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(BuildError):
        GitCheckoutBuilder(tmp_path / "ws").build(run_of(url.format(marker=marker), sha="a" * 40), key="k")
    assert not marker.exists()


def test_a_pull_request_builds_its_head_even_when_no_branch_holds_it(tmp_path: Path, repo: Path) -> None:
    """A fork's commit is on no branch of the base repository; GitHub serves it as refs/pull/N/head."""
    git(repo, "switch", "-q", "-c", "fork-branch")
    (repo / "train.py").write_text("print('from the fork')\n")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-qam", "fork")
    head = git(repo, "rev-parse", "HEAD")
    git(repo, "update-ref", "refs/pull/7/head", head)
    git(repo, "switch", "-q", "main")
    git(repo, "branch", "-q", "-D", "fork-branch")
    run = run_of(repo.as_uri(), kind="pull_request", sha=head, ref="refs/heads/fork-branch", pr_number=7)
    result = GitCheckoutBuilder(tmp_path / "ws").build(run, key="k")
    assert result.sha == head and Path(result.image or "", "train.py").read_text() == "print('from the fork')\n"
