"""Local image builder: the "image" of a run is a clean checkout of its exact commit."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from relaunch.pipelines.model import BuildResult, PipelineRun


class BuildError(ValueError):
    """The commit cannot be checked out (bad URL, unknown SHA): permanent for this run."""


class GitCheckoutBuilder:
    """Clones the run's repository and checks out its commit into a workspace folder."""

    def __init__(self, workspaces: Path) -> None:
        self._root = workspaces

    def build(self, run: PipelineRun, key: str) -> BuildResult:
        """Check out the commit once per key; later calls return the same folder."""
        build_id = "checkout-" + hashlib.sha256(key.encode()).hexdigest()[:12]
        dest = self._root / run.id
        if (dest / ".relaunch-checkout").exists():
            return BuildResult(build_id=build_id, image=str(dest))
        if not run.trigger.clone_url or not run.trigger.sha:
            raise BuildError(f"run {run.id} has no clone URL or commit to check out")
        tmp = self._root / f".{run.id}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        self._root.mkdir(parents=True, exist_ok=True)
        _git("clone", "--quiet", "--no-checkout", run.trigger.clone_url, str(tmp))
        _git("-C", str(tmp), "checkout", "--quiet", "--detach", run.trigger.sha)
        (tmp / ".relaunch-checkout").write_text(run.trigger.sha + "\n")
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)  # atomic: a crash leaves either nothing or a complete checkout
        return BuildResult(build_id=build_id, image=str(dest))


def _git(*args: str) -> None:
    proc = subprocess.run(["git", *args], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise BuildError(f"git {args[0] if args[0] != '-C' else args[2]} failed: {proc.stderr.strip()[-300:]}")
