"""Webhook storm on the embedded stack: a burst of pushes to one branch, every delivery sent several times.

Prints the training jobs submitted and run, the runs' end states, the side effects per run (none may repeat), and
the GPU-hours (and training seconds) the ledger says coalescing saved. Budgets: 0 duplicate side effects; a burst of
20 pushes -> at most 2 trainings.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from relaunch.adapters.local.agent import LocalAgent  # noqa: E402
from relaunch.bootstrap import App, embedded_stack  # noqa: E402
from relaunch.demo import DEMO_REPO, _make_repo  # noqa: E402
from relaunch.pipelines import cost, ledger  # noqa: E402
from relaunch.settings import Settings  # noqa: E402
from relaunch.simulate import git, push_payload, send_github  # noqa: E402


def payloads(repo: Path, n: int) -> list[dict[str, Any]]:
    """N pushes of consecutive commits to main, prepared before the burst."""
    made, before = [], None
    for i in range(n):
        if i:
            with open(repo / "train.py", "a") as fh:
                fh.write(f"# storm push {i}\n")
            git(repo, "commit", "-qam", f"storm push {i}")
        made.append(push_payload(repo, full_name=DEMO_REPO, before=before))
        before = git(repo, "rev-parse", "HEAD")
    return made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pushes", type=int, default=20)
    parser.add_argument("--copies", type=int, default=10, help="times each delivery is sent")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="relaunch-storm-"))
    # The demo spec, declaring the GPU a real pipeline would train on, so the ledger prices what coalescing saved
    # (the local agent runs the job on the CPU whatever the spec asks).
    specs = work / "pipelines"
    specs.mkdir()
    text = (ROOT / "pipelines" / "digits.yaml").read_text()
    gpu = "machine_type: n1-standard-4\n    accelerator_type: NVIDIA_TESLA_T4\n    accelerator_count: 1"
    (specs / "digits.yaml").write_text(text.replace("machine_type: n1-standard-4", gpu, 1))
    settings = Settings(home=work / "home", pipelines_dir=specs, github_webhook_secret="storm")
    try:
        with embedded_stack(settings) as stack:
            app = App(stack.settings)
            pushes = payloads(_make_repo(ROOT / "examples" / "digits", work / "digits"), args.pushes)
            url, secret = stack.url_of("github_webhook"), stack.settings.webhook_secret() or ""
            sends = [(p, f"storm-{i}") for i, p in enumerate(pushes) for _ in range(args.copies)]
            started = time.perf_counter()
            with ThreadPoolExecutor(16) as pool:
                codes = Counter(pool.map(lambda s: send_github(url, "push", s[0], secret, s[1]).status_code, sends))
            print(f"sent {len(sends)} deliveries in {time.perf_counter() - started:.2f}s: {dict(codes)}")
            runs = wait_terminal(app, args.timeout)
            return report(app, settings, runs, args.pushes)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def wait_terminal(app: App, timeout: float) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        runs = app.store.list_runs(limit=1000)
        if runs and all(r.state.terminal for r in runs) or time.monotonic() > deadline:
            return runs
        time.sleep(0.2)


def report(app: App, settings: Settings, runs: list[Any], pushes: int) -> int:
    agent = LocalAgent(settings.agent_path, settings.logs_dir)
    jobs = agent.list_jobs()
    trains = [(req, st) for req, st in jobs if req.step == "train"]
    ran = [st for _, st in trains if st.started_at is not None and st.state != "cancelled"]
    keys = Counter(req.key for req, _ in jobs)
    states = Counter(r.state.value for r in runs)
    duplicates = sum(c - 1 for c in keys.values()) + max(0, len(runs) - pushes)
    notes = Counter(n.message for r in runs for n in app.store.timeline(r.id) if n.kind == "notify")
    summary = cost.summarize(ledger.read(app.store))
    saved_s = sum(e.train_s for e in ledger.read(app.store) if e.trained)
    print(f"runs: {len(runs)} for {pushes} pushes  states: {dict(states)}")
    for r in runs:
        if r.state.value == "failed":
            print(f"  {r.id} failed: {r.reason[:150]}")
    print(f"training jobs submitted: {len(trains)}  ran (not cancelled): {len(ran)}  completed: "
          f"{sum(st.state == 'succeeded' for _, st in trains)}")
    print(f"duplicate side effects (job keys, runs): {duplicates}  timeline notifications: {sum(notes.values())}")
    print(f"GPU-hours spent {summary.total.gpu_hours:.4f}, saved by coalescing {summary.total.gpu_hours_saved:.4f}; "
          f"trained seconds {saved_s:.1f}; notes: {summary.notes}")
    ok = duplicates == 0 and len(ran) <= 2
    print(f"budgets: 0 duplicate side effects, <= 2 trainings: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
