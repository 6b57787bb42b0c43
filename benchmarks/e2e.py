"""Push -> promoted overhead on the embedded stack: wall time minus the training and evaluation jobs' own time.

Starts the embedded stack, pushes N commits of the digits example (each promoted), and prints per push the wall
time from sending the webhook to the run reaching `promoted`, the jobs' time, and the difference (the overhead:
webhook, bus, orchestrator, checkout, queueing, registry, deploy). Run on demand: `python3 benchmarks/e2e.py [-n 5]`.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from relaunch.bootstrap import App, embedded_stack  # noqa: E402
from relaunch.demo import DEMO_REPO, _make_repo  # noqa: E402
from relaunch.domain.model import RunState  # noqa: E402
from relaunch.settings import Settings  # noqa: E402
from relaunch.simulate import git, push_payload, send_github  # noqa: E402


def push_and_wait(stack, app: App, repo: Path, before: str | None) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    payload = push_payload(repo, full_name=DEMO_REPO, before=before)
    started = time.perf_counter()
    reply = send_github(stack.url_of("github_webhook"), "push", payload, stack.settings.webhook_secret())
    run_id = reply.json()["runs"][0]
    while True:
        run = app.store.get_run(run_id)
        if run is not None and run.state.terminal:
            break
        time.sleep(0.002)
    wall = time.perf_counter() - started
    if run.state is not RunState.PROMOTED:
        raise SystemExit(f"run {run_id} ended {run.state.value}: {run.reason}")
    return wall, sum(run.stage_durations.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=5, help="pushes to time")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="relaunch-bench-"))
    settings = Settings(home=work / "home", pipelines_dir=ROOT / "pipelines", github_webhook_secret="bench")
    try:
        with embedded_stack(settings) as stack:
            app = App(stack.settings)
            repo = _make_repo(ROOT / "examples" / "digits", work / "digits")
            before, overheads = None, []
            for i in range(args.n):
                if i:
                    with open(repo / "train.py", "a") as fh:
                        fh.write(f"# benchmark push {i}\n")
                    git(repo, "commit", "-qam", f"benchmark push {i}")
                wall, jobs = push_and_wait(stack, app, repo, before)
                before = git(repo, "rev-parse", "HEAD")
                overheads.append(wall - jobs)
                print(f"push {i + 1}: wall {wall:6.3f}s  jobs {jobs:6.3f}s  overhead {wall - jobs:6.3f}s")
            print(f"overhead median {statistics.median(overheads):.3f}s  max {max(overheads):.3f}s  (budget 1.000s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
