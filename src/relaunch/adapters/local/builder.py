"""Local image builder: the "image" of a run is a clean checkout of its exact commit (or of its ref's head), with
the Python environment its dependency file declares (adapters/local/pyenv.py), as a Dockerfile would install them.

Every SHA and ref is checked before git runs, every git call ends its options (`--`, or `--end-of-options` where `--`
would mean paths), and git may speak only https, ssh and file, and never prompts.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from relaunch.adapters.local.pyenv import PythonEnvironments
from relaunch.domain.gitnames import is_sha, run_ref_problem
from relaunch.domain.model import BuildResult, PipelineRun, Trigger

MARKER = ".relaunch-checkout"
# No ext::, fd:: or other transports that run commands; no credential prompt hanging a build.
GIT_ENV = {"GIT_ALLOW_PROTOCOL": "https:ssh:file", "GIT_TERMINAL_PROMPT": "0"}


class BuildError(ValueError):
    """The commit cannot be checked out (bad URL, unknown SHA or ref) or its dependencies cannot be installed:
    permanent for this run."""


class GitCheckoutBuilder:
    """Clones the run's repository, checks out its commit into a workspace folder and prepares its environment.

    Without `environments` a checkout is all (its jobs run with relaunch's own interpreter).
    """

    def __init__(self, workspaces: Path, environments: PythonEnvironments | None = None) -> None:
        self._root, self._environments = workspaces, environments

    def build(self, run: PipelineRun, key: str) -> BuildResult:
        """Check out the commit and prepare its environment; later calls return the same folder, commit and hash."""
        build_id = "checkout-" + hashlib.sha256(key.encode()).hexdigest()[:12]
        dest, sha = self._checked_out(run)
        if self._environments is None:
            return BuildResult(build_id=build_id, image=str(dest), sha=sha)
        try:
            prepared = self._environments.prepare(dest)
        except ValueError as exc:  # the commit's dependency file refused, or its installation failed
            raise BuildError(str(exc)) from None
        return BuildResult(
            build_id=build_id, image=str(dest), sha=sha, environment=prepared.hash, environment_note=prepared.note
        )

    def _checked_out(self, run: PipelineRun) -> tuple[Path, str]:
        """The run's checkout folder and commit, cloned once (a concurrent attempt's checkout is as good)."""
        dest = self._root / run.id
        if (dest / MARKER).exists():
            return dest, (dest / MARKER).read_text().strip()
        if not run.trigger.clone_url or not (run.trigger.sha or run.trigger.ref):
            raise BuildError(f"run {run.id} has no clone URL, or neither a commit nor a ref to check out")
        _check_names(run.trigger)
        self._root.mkdir(parents=True, exist_ok=True)
        # Each attempt clones into its own folder: a redelivered command may build the same run concurrently.
        tmp = Path(tempfile.mkdtemp(prefix=f".{run.id}.", dir=self._root))
        try:
            sha = _checkout(tmp, run.trigger)
            (tmp / MARKER).write_text(sha + "\n")
            if dest.exists() and not (dest / MARKER).exists():
                shutil.rmtree(dest, ignore_errors=True)  # an incomplete folder from an older layout: replace it
            try:
                tmp.rename(dest)  # atomic: a crash leaves either nothing or a complete checkout
            except OSError:
                if not (dest / MARKER).exists():
                    raise
                sha = (dest / MARKER).read_text().strip()  # a concurrent attempt won: use its checkout
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return dest, sha


def _check_names(trigger: Trigger) -> None:
    """Refuse, before git runs, a SHA or ref that is not well formed (an option-shaped one above all): permanent."""
    for field, value in (("sha", trigger.sha), ("base_sha", trigger.base_sha)):
        if value is not None and not is_sha(value):
            raise BuildError(f"trigger.{field} {value[:80]!r} is not a full commit SHA (40 or 64 lower-case hex)")
    if trigger.ref is not None and (problem := run_ref_problem(trigger.ref)):
        raise BuildError(f"trigger.ref {trigger.ref[:80]!r} {problem}")
    if trigger.pr_number is not None and trigger.pr_number < 1:
        raise BuildError(f"trigger.pr_number {trigger.pr_number} is not a pull request number")


def _checkout(clone: Path, trigger: Trigger) -> str:
    """Clone, check out the run's commit (or its ref's head) detached, and return that commit."""
    _clone(str(trigger.clone_url), clone)
    if trigger.pr_number is not None and not (trigger.sha and _verified(clone, trigger.sha)):
        # A fork's commit is on no branch of the base repository; GitHub serves each PR's head as refs/pull/N/head.
        _git("-C", str(clone), "fetch", "--quiet", "--", "origin", f"refs/pull/{trigger.pr_number}/head")
    sha = trigger.sha or _resolve(clone, trigger.ref or "")
    # `git checkout --detach X --` still reads an X of "--orphan=..." as an option; switch takes it after `--`.
    _git("-C", str(clone), "switch", "--quiet", "--detach", "--", sha)
    return sha


def _clone(url: str, dest: Path) -> None:
    """Clone without checkout; a failure says, in one line, which spec field chose the URL and how to fix it."""
    proc = subprocess.run(
        ["git", "clone", "--quiet", "--no-checkout", "--", url, str(dest)],
        capture_output=True,
        text=True,
        timeout=300,
        env=git_env(),
    )
    if proc.returncode != 0:
        said = " ".join(proc.stderr.split())[-300:]
        raise BuildError(
            f"git clone of {url[:200]} failed: {said}; set the pipeline spec's source.clone_url to where the code is"
            " (file:///PATH for a repository on this machine; unset, it is https://github.com/<source.repo>.git)"
        )


def _resolve(clone: Path, ref: str) -> str:
    """The commit a ref (refs/heads/x, refs/tags/x or a bare branch name) points at in a fresh clone."""
    name = ref.removeprefix("refs/heads/")
    candidates = [f"refs/tags/{ref.removeprefix('refs/tags/')}"] if ref.startswith("refs/tags/") else []
    candidates += [f"refs/remotes/origin/{name}", ref]
    for candidate in candidates:
        if found := _verified(clone, candidate):
            return found
    raise BuildError(f"ref {ref!r} does not exist in the repository")


def _verified(clone: Path, name: str) -> str | None:
    """The commit `name` (a SHA or a ref) names in the clone, or None when the clone has no such commit."""
    proc = subprocess.run(
        ["git", "-C", str(clone), "rev-parse", "--verify", "--quiet", "--end-of-options", f"{name}^{{commit}}"],
        capture_output=True,
        text=True,
        timeout=60,
        env=git_env(),
    )
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


def git_env() -> dict[str, str]:
    """The environment every git call runs in: the caller's, with only safe transports and no prompt."""
    return {**os.environ, **GIT_ENV}


def _git(*args: str) -> None:
    proc = subprocess.run(["git", *args], capture_output=True, text=True, timeout=300, env=git_env())
    if proc.returncode != 0:
        raise BuildError(f"git {args[0] if args[0] != '-C' else args[2]} failed: {proc.stderr.strip()[-300:]}")
