"""Push -> promoted overhead on the embedded stack: wall time minus the training and evaluation jobs' own time.

Starts the embedded stack, pushes N commits of the digits example (each promoted), and prints per push the wall
time from sending the webhook to the run reaching `promoted`, the jobs' time, and the difference (the overhead:
webhook, bus, orchestrator, checkout, queueing, registry, deploy). `--timeline` adds each push's timeline: the
seconds from sending the push to each entry (where the first push's extra time goes). Also prints the time the stack
took to start (until it reported ready). Run on demand: `python3 benchmarks/e2e.py [-n 5] [--timeline]`.
`--src PATH` (or RELAUNCH_SRC) chooses the `src` directory imported, so an older checkout can be measured too.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from checkout import CHECKOUT, SRC  # before relaunch: it chooses which relaunch is imported below

from relaunch.bootstrap import App, embedded_stack  # noqa: E402
from relaunch.demo import DEMO_REPO, demo_specs, make_repo  # noqa: E402
from relaunch.domain.model import RunState  # noqa: E402
from relaunch.settings import Settings  # noqa: E402
from relaunch.simulate import git, push_payload, send_github  # noqa: E402


def push_and_wait(stack, app: App, repo: Path, before: str | None) -> tuple[str, float, float, float]:  # type: ignore[no-untyped-def]
    """Push HEAD and wait for its run to end: (run id, when it was sent, wall seconds, the jobs' seconds)."""
    payload = push_payload(repo, full_name=DEMO_REPO, before=before)
    sent, started = time.time(), time.perf_counter()
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
    return run_id, sent, wall, sum(run.stage_durations.values())


def print_timeline(app: App, run_id: str, sent: float) -> None:
    """Each timeline entry of the run, at its offset from the push being sent."""
    for entry in app.store.timeline(run_id):
        print(f"    +{entry.at - sent:6.3f}s  {entry.kind:<14} {entry.message[:90]}")


def prepare_environment(settings: Settings) -> None:
    """Build the example's Python environment before the stack starts, as an earlier stack sharing the folder would
    have: building it (tens of seconds, once per set of dependencies) is no part of the overhead measured here."""
    from relaunch.adapters.local.pyenv import PythonEnvironments

    scratch = make_repo(CHECKOUT / "examples" / "digits", settings.home.parent / "scratch")
    PythonEnvironments(settings.envs_dir).prepare(scratch)
    shutil.rmtree(scratch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=5, help="pushes to time")
    parser.add_argument("--timeline", action="store_true", help="print each push's timeline")
    parser.add_argument("--src", help="the src directory to import relaunch from (default: this checkout's)")
    args = parser.parse_args()
    print(f"relaunch from {SRC}")
    work = Path(tempfile.mkdtemp(prefix="relaunch-bench-"))
    specs = demo_specs(CHECKOUT / "pipelines", work / "pipelines", work / "digits")  # specs that clone the repo below
    settings = Settings(home=work / "home", pipelines_dir=specs, github_webhook_secret="bench")
    try:
        prepare_environment(settings)
        started = time.perf_counter()
        with embedded_stack(settings) as stack:
            print(f"stack ready in {time.perf_counter() - started:.3f}s")
            app = App(stack.settings)
            repo = make_repo(CHECKOUT / "examples" / "digits", work / "digits")
            before, overheads = None, []
            for i in range(args.n):
                if i:
                    with open(repo / "train.py", "a") as fh:
                        fh.write(f"# benchmark push {i}\n")
                    git(repo, "commit", "-qam", f"benchmark push {i}")
                run_id, sent, wall, jobs = push_and_wait(stack, app, repo, before)
                before = git(repo, "rev-parse", "HEAD")
                overheads.append(wall - jobs)
                print(f"push {i + 1}: wall {wall:6.3f}s  jobs {jobs:6.3f}s  overhead {wall - jobs:6.3f}s")
                if args.timeline:
                    print_timeline(app, run_id, sent)
            print(f"overhead median {statistics.median(overheads):.3f}s  max {max(overheads):.3f}s  (goal: max 0.250s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
