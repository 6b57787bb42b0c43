"""The local build builds the commit's Python environment: from its requirements.txt (or pyproject.toml), once per
set of dependencies, and the local agent runs the commit's jobs with it.

Packages come from a loopback index of hand-made wheels (tests/integration/wheel_index.py) and uv's cache is the
test's own, so nothing here reaches PyPI.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from relaunch.adapters.local.agent import LocalAgent
from relaunch.adapters.local.builder import BuildError, GitCheckoutBuilder
from relaunch.adapters.local.pyenv import PythonEnvironments
from relaunch.adapters.local.sandbox import JobSandbox, probe
from relaunch.domain.model import BuildResult, JobRequest, PipelineRun, Trigger
from tests.integration.wheel_index import make_index, serve

PROBE = "import relaunchprobe, sys; print(relaunchprobe.VERSION, sys.prefix)"
DEADLINE_S = 30.0


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def commit(repo: Path, files: dict[str, str | None]) -> str:
    """Write (or, for None, delete) `files` in `repo`, commit, and return the commit."""
    for name, text in files.items():
        if text is None:
            (repo / name).unlink()
        else:
            (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-qm", "change")
    return git(repo, "rev-parse", "HEAD")


def run_of(repo: Path, sha: str, run_id: str) -> PipelineRun:
    trigger = Trigger(kind="push", delivery_key=run_id, clone_url=str(repo), sha=sha)
    return PipelineRun(id=run_id, pipeline="p", trigger=trigger)


@pytest.fixture()
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A loopback index with relaunchprobe 1.0 and 2.0, and uv told to use it and a cache of this test's own."""
    with serve(make_index(tmp_path / "index", "relaunchprobe", ("1.0", "2.0"))) as url:
        monkeypatch.setenv("UV_DEFAULT_INDEX", url)
        monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
        yield url


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    return path


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def builder(home: Path, envs: Path | None = None) -> GitCheckoutBuilder:
    return GitCheckoutBuilder(home / "workspaces", PythonEnvironments(envs or home / "envs"))


def run_job(
    home: Path, result: BuildResult, code: str = PROBE, sandbox: bool = False, envs: Path | None = None
) -> tuple[str, str]:
    """Run `python -c code` as the local agent runs a training job in the build; (its message, its last line)."""
    envs = envs or home / "envs"
    box = JobSandbox(home, home / "runs", envs) if sandbox else None
    agent = LocalAgent(home / "agent.db", home / "logs", poll_interval=0.02, sandbox=box, environments=envs)
    key = f"job-{time.monotonic_ns()}"
    request = JobRequest(key=key, run_id="p-1", step="train", image=result.image or "", command=["python", "-c", code])
    job_id = agent.submit(request)
    agent.start()
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not agent.status(job_id).done:
            assert time.monotonic() < deadline, "the job did not finish"
            time.sleep(0.02)
    finally:
        agent.stop()
    status = agent.status(job_id)
    return status.message, (status.log_tail.splitlines() or [""])[-1]


def test_a_commit_trains_with_its_dependencies_and_a_commit_that_changes_them_with_the_new(
    index: str, repo: Path, home: Path
) -> None:
    first = commit(repo, {"requirements.txt": "relaunchprobe==1.0  # pinned\n", "train.py": "print(1)\n"})
    one = builder(home).build(run_of(repo, first, "p-1"), "p-1:build")
    assert one.environment and f"environment {one.environment}: built in" in one.environment_note
    assert run_job(home, one) == ("exited with code 0", f"1.0 {home / 'envs' / one.environment}")

    second = commit(repo, {"requirements.txt": "relaunchprobe==2.0\n"})
    two = builder(home).build(run_of(repo, second, "p-2"), "p-2:build")
    assert two.environment not in (None, one.environment)
    assert run_job(home, two)[1] == f"2.0 {home / 'envs' / two.environment}"

    # Code and comments changed, dependencies not: the environment is reused, nothing installed.
    third = commit(repo, {"requirements.txt": "# the probe\nrelaunchprobe==1.0\n", "train.py": "print(3)\n"})
    started = time.monotonic()
    three = builder(home).build(run_of(repo, third, "p-3"), "p-3:build")
    assert three.environment == one.environment and three.environment_note == f"environment {one.environment}: reused"
    assert time.monotonic() - started < 5.0


def test_pyproject_dependencies_count_when_there_is_no_requirements_file(index: str, repo: Path, home: Path) -> None:
    toml = '[project]\nname = "model"\nversion = "0"\ndependencies = ["relaunchprobe>=2"]\n'
    built = builder(home).build(run_of(repo, commit(repo, {"pyproject.toml": toml}), "p-1"), "k")
    assert "from pyproject.toml" in built.environment_note
    assert run_job(home, built)[1].startswith("2.0 ")


def test_a_repo_that_declares_nothing_runs_with_relaunchs_own_interpreter(index: str, repo: Path, home: Path) -> None:
    toml = "[tool.ruff]\nline-length = 100\n"  # a pyproject.toml that is tool configuration only declares nothing
    built = builder(home).build(
        run_of(repo, commit(repo, {"train.py": "print(1)\n", "pyproject.toml": toml}), "p-1"), "k"
    )
    assert built.environment is None and built.environment_note == "environment: none declared (relaunch's own)"
    message, line = run_job(home, built, "import sys; print(sys.prefix)")
    assert (message, line) == ("exited with code 0", sys.prefix)
    assert not (home / "envs").exists()


def test_a_broken_dependency_fails_the_build_with_the_installers_message_and_leaves_nothing(
    index: str, repo: Path, home: Path
) -> None:
    sha = commit(repo, {"requirements.txt": "relaunchprobe==9.9\n"})
    with pytest.raises(BuildError) as failed:
        builder(home).build(run_of(repo, sha, "p-1"), "k")
    message = str(failed.value)
    assert message.startswith("requirements.txt: the installer failed: ") and "relaunchprobe" in message
    assert "9.9" in message and len(message) <= 1200 and "\x1b" not in message
    assert [p.name for p in (home / "envs").iterdir() if not p.name.endswith(".lock")] == []


def test_an_option_include_or_url_in_the_file_is_refused_before_the_installer_runs(
    index: str, repo: Path, home: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.env"
    secret.write_text("TOKEN=s3cret\n")
    for n, line in enumerate((f"-r {secret}", "--index-url http://evil.invalid/simple", "probe @ file:///etc")):
        sha = commit(repo, {"requirements.txt": f"relaunchprobe==1.0\n{line}\n"})
        with pytest.raises(BuildError, match="requirements.txt line 2: ") as refused:
            builder(home).build(run_of(repo, sha, f"p-{n}"), "k")
        assert "s3cret" not in str(refused.value)
    assert not (home / "envs").exists()


def test_an_unreachable_index_still_builds_from_the_installers_cache(
    tmp_path: Path, repo: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    with serve(make_index(tmp_path / "index", "relaunchprobe", ("1.0", "2.0"))) as url:
        monkeypatch.setenv("UV_DEFAULT_INDEX", url)
        builder(home).build(run_of(repo, commit(repo, {"requirements.txt": "relaunchprobe==1.0\n"}), "p-1"), "k")
    # The index is gone (its port refuses), and a new set of dependencies the cache can satisfy still builds.
    sha = commit(repo, {"requirements.txt": "relaunchprobe<2\n"})
    built = builder(home).build(run_of(repo, sha, "p-2"), "k")
    assert ": built in" in built.environment_note and run_job(home, built)[1].startswith("1.0 ")


def test_concurrent_builds_of_one_environment_install_it_once(index: str, repo: Path, home: Path) -> None:
    sha = commit(repo, {"requirements.txt": "relaunchprobe==1.0\n"})
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda n: builder(home).build(run_of(repo, sha, f"p-{n}"), "k"), range(4)))
    notes = sorted(r.environment_note.split(": ")[1].split(" in ")[0] for r in results)
    assert notes == ["built", "reused", "reused", "reused"] and len({r.environment for r in results}) == 1
    assert sorted(p.name for p in (home / "envs").iterdir() if not p.name.endswith(".lock")) == [results[0].environment]


@pytest.mark.skipif(probe() is not None, reason="no job sandbox on this machine")
def test_a_sandboxed_job_sees_its_environment_read_only(index: str, repo: Path, home: Path) -> None:
    built = builder(home).build(run_of(repo, commit(repo, {"requirements.txt": "relaunchprobe==1.0\n"}), "p-1"), "k")
    code = (
        "import os, relaunchprobe\n"
        "try:\n    open(os.path.join(os.path.dirname(relaunchprobe.__file__), 'x.py'), 'w')\n"
        "except OSError as exc:\n    print('refused', exc.errno, relaunchprobe.VERSION)\n"
    )
    assert run_job(home, built, code, sandbox=True) == ("exited with code 0", "refused 30 1.0")  # EROFS


def test_environments_shared_outside_the_home_are_read_only_to_every_sandboxed_job(
    index: str, repo: Path, tmp_path: Path
) -> None:
    shared, home = tmp_path / "shared-envs", tmp_path / "home"  # RELAUNCH_PYTHON_ENVS_DIR, as stacks share it
    old = builder(home, shared).build(
        run_of(repo, commit(repo, {"requirements.txt": "relaunchprobe==1.0\n"}), "p-1"), "a"
    )
    new = builder(home, shared).build(
        run_of(repo, commit(repo, {"requirements.txt": "relaunchprobe==2.0\n"}), "p-2"), "b"
    )
    other = next(p for p in shared.iterdir() if p.is_dir() and p.name != old.environment)
    assert new.environment == other.name  # a second environment, another job's, beside this job's own
    code = (
        "import glob, relaunchprobe\n"
        f"target = glob.glob({str(other)!r} + '/lib/python*/site-packages/relaunchprobe')[0] + '/x.py'\n"
        "try:\n    open(target, 'w')\n"
        "except OSError as exc:\n    print('refused', exc.errno, relaunchprobe.VERSION)\n"
    )
    assert run_job(home, old, code, sandbox=True, envs=shared) == ("exited with code 0", "refused 30 1.0")  # EROFS


def test_the_agent_refuses_an_environment_marker_that_names_no_environment(index: str, repo: Path, home: Path) -> None:
    built = builder(home).build(run_of(repo, commit(repo, {"requirements.txt": "relaunchprobe==1.0\n"}), "p-1"), "k")
    Path(built.image or "", ".relaunch-environment").write_text("../../../usr\n")  # what a hostile job could write
    message, _ = run_job(home, built)
    assert message.startswith("could not start") and "environment" in message
