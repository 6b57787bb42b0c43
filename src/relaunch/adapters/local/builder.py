"""Local image builder: the "image" of a run is a clean checkout of its exact commit (or of its ref's head)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from relaunch.pipelines.model import BuildResult, PipelineRun

MARKER = ".relaunch-checkout"


class BuildError(ValueError):
    """The commit cannot be checked out (bad URL, unknown SHA or ref): permanent for this run."""


class GitCheckoutBuilder:
    """Clones the run's repository and checks out its commit into a workspace folder."""

    def __init__(self, workspaces: Path) -> None:
        self._root = workspaces

    def build(self, run: PipelineRun, key: str) -> BuildResult:
        """Check out the commit once per key; later calls return the same folder and commit."""
        build_id = "checkout-" + hashlib.sha256(key.encode()).hexdigest()[:12]
        dest = self._root / run.id
        if (dest / MARKER).exists():
            return BuildResult(build_id=build_id, image=str(dest), sha=(dest / MARKER).read_text().strip())
        if not run.trigger.clone_url or not (run.trigger.sha or run.trigger.ref):
            raise BuildError(f"run {run.id} has no clone URL, or neither a commit nor a ref to check out")
        self._root.mkdir(parents=True, exist_ok=True)
        # Each attempt clones into its own folder: a redelivered command may build the same run concurrently.
        tmp = Path(tempfile.mkdtemp(prefix=f".{run.id}.", dir=self._root))
        try:
            _git("clone", "--quiet", "--no-checkout", run.trigger.clone_url, str(tmp))
            sha = run.trigger.sha or _resolve(tmp, run.trigger.ref or "")
            _git("-C", str(tmp), "checkout", "--quiet", "--detach", sha)
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
        return BuildResult(build_id=build_id, image=str(dest), sha=sha)


def _resolve(clone: Path, ref: str) -> str:
    """The commit a ref (refs/heads/x, refs/tags/x or a bare branch name) points at in a fresh clone."""
    name = ref.removeprefix("refs/heads/")
    candidates = [f"refs/tags/{ref.removeprefix('refs/tags/')}"] if ref.startswith("refs/tags/") else []
    candidates += [f"refs/remotes/origin/{name}", ref]
    for candidate in candidates:
        proc = subprocess.run(
            ["git", "-C", str(clone), "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
    raise BuildError(f"ref {ref!r} does not exist in the repository")


def _git(*args: str) -> None:
    proc = subprocess.run(["git", *args], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise BuildError(f"git {args[0] if args[0] != '-C' else args[2]} failed: {proc.stderr.strip()[-300:]}")
