"""Webhook storms on the embedded stack: what a sender's retries, a resender and a crowd of deliveries cost.

Scenarios (`--scenario`, default all; each runs on a fresh stack):
- burst: P pushes of consecutive commits to one branch, every delivery sent C times under the SAME delivery id, with
  no debounce; budgets: 0 duplicate side effects, at most 2 training jobs submitted.
- burst-debounce: the same burst with `coalesce.debounce_s` set (`--debounce`); budget: exactly 1 training submitted.
- single: one push on a quiet lane; budget: 1 training, submitted at once (its latency is printed: no quiet window).
- resend: K commits, each signed push body sent C times under DISTINCT delivery ids, concurrently;
  budget: K runs and at most K trainings.
- one-commit: N distinct deliveries of one commit, POSTed at once; budget: exactly 1 run and 1 training.
Each prints the deliveries and their status codes, the runs and their end states, the training jobs submitted,
cancelled and run, the newest push's time from arrival to its training's submission, the promotions, the duplicate
side effects, the GPU-hours coalescing saved and the wall time to settle.
`--src PATH` (or RELAUNCH_SRC) chooses the `src` directory imported, so an older checkout can be measured too.
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

import yaml
from checkout import CHECKOUT, SRC  # before relaunch: it chooses which relaunch is imported below
from pydantic import SecretStr

import relaunch  # noqa: E402
from relaunch.adapters.local.agent import LocalAgent  # noqa: E402
from relaunch.bootstrap import App, embedded_stack  # noqa: E402
from relaunch.demo import DEMO_REPO, make_repo  # noqa: E402
from relaunch.domain import cost  # noqa: E402
from relaunch.service import ledger  # noqa: E402
from relaunch.settings import Settings  # noqa: E402
from relaunch.simulate import git, push_payload, send_github  # noqa: E402

PIPELINE = "digits"
RUN_ID = re.compile(r"\b[a-z0-9-]+-[0-9a-f]{8,}\b")
AUTHOR = ("-c", "user.name=relaunch storm", "-c", "user.email=storm@relaunch.invalid")


@dataclass(frozen=True)
class Scenario:
    """One storm: the deliveries it sends, whether they go all at once, and its budget."""

    name: str
    title: str
    commits: int
    sends: Callable[[list[dict[str, Any]]], list[tuple[dict[str, Any], str]]]
    at_once: bool
    budget: str
    met: Callable[[dict[str, int]], bool]
    debounce_s: float = 0.0  # the spec's coalesce.debounce_s
    warm: bool = False  # one push trains first, so the storm meets a warm lane (environment built, builds quick)


def scenarios(args: argparse.Namespace) -> dict[str, Scenario]:
    """The three storms, sized by the command line."""
    p, c, k, n, d = args.pushes, args.copies, args.commits, args.deliveries, args.debounce

    def burst(pushes: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
        return [(x, f"storm-{i}") for i, x in enumerate(pushes) for _ in range(c)]

    return {
        "burst": Scenario(
            "burst",
            f"{p} pushes, each delivery sent {c} times under the same id, no debounce",
            p,
            burst,
            False,
            "0 duplicate side effects, <= 2 trainings submitted, the newest commit promoted",
            lambda f: f["duplicates"] == 0 and f["submitted"] <= 2 and f["ran"] <= 2 and f["newest"] == 1,
            warm=True,
        ),
        "burst-debounce": Scenario(
            "burst-debounce",
            f"{p} pushes, each delivery sent {c} times under the same id, debounce {d:g}s",
            p,
            burst,
            False,
            "0 duplicate side effects, exactly 1 training submitted, the newest commit promoted",
            lambda f: f["duplicates"] == 0 and f["submitted"] == 1 and f["ran"] == 1 and f["newest"] == 1,
            debounce_s=d,
            warm=True,
        ),
        "single": Scenario(
            "single",
            "one push on a quiet lane",
            1,
            lambda pushes: [(pushes[0], "single-0")],
            False,
            "exactly 1 run and 1 training",
            lambda f: f["runs"] == 1 and f["submitted"] == 1 and f["ran"] == 1,
            warm=True,
        ),
        "resend": Scenario(
            "resend",
            f"{k} commits, each signed body sent {c} times under distinct ids, concurrently",
            k,
            lambda pushes: [(x, f"resend-{i}-{j}") for i, x in enumerate(pushes) for j in range(c)],
            True,
            f"runs == {k} and trainings <= {k}",
            lambda f: f["runs"] == k and f["ran"] <= k,
        ),
        "one-commit": Scenario(
            "one-commit",
            f"{n} distinct deliveries of one commit, at once",
            1,
            lambda pushes: [(pushes[0], f"one-commit-{j}") for j in range(n)],
            True,
            "exactly 1 run and 1 training",
            lambda f: f["runs"] == 1 and f["ran"] == 1 and f["submitted"] == 1,
        ),
    }


def payloads(repo: Path, n: int) -> list[dict[str, Any]]:
    """N pushes of consecutive commits to main, prepared before the storm."""
    made, before = [], None
    for i in range(n):
        if i:
            with open(repo / "train.py", "a") as fh:
                fh.write(f"# storm push {i}\n")
            git(repo, *AUTHOR, "commit", "-qam", f"storm push {i}")
        made.append(push_payload(repo, full_name=DEMO_REPO, before=before))
        before = git(repo, "rev-parse", "HEAD")
    return made


def storm_specs(work: Path, repo: Path, debounce_s: float = 0.0) -> Path:
    """The demo spec, cloning the throwaway repo and declaring the GPU a real pipeline would train on."""
    # A run clones only the URL its spec names; the GPU lets the ledger price what coalescing saved (the local agent
    # runs the job on the CPU whatever the spec asks).
    specs = work / "pipelines"
    specs.mkdir()
    text = (CHECKOUT / "pipelines" / "digits.yaml").read_text()
    gpu = "machine_type: n1-standard-4\n    accelerator_type: NVIDIA_TESLA_T4\n    accelerator_count: 1"
    spec = yaml.safe_load(text.replace("machine_type: n1-standard-4", gpu, 1))
    spec["source"]["clone_url"] = repo.resolve().as_uri()
    if debounce_s:
        spec.setdefault("coalesce", {})["debounce_s"] = debounce_s
    (specs / "digits.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return specs


def blast(
    url: str, secret: str, sends: list[tuple[dict[str, Any], str]], at_once: bool, gap_s: float = 0.0
) -> Counter[str]:
    """POST every delivery; counts 'status outcome'.

    `at_once` starts them all together behind a barrier. Otherwise pushes arrive in order, as GitHub sends a branch's
    pushes: a push's copies go out together `gap_s` after the previous push had its first answer (its run is written),
    and go on meanwhile with the next pushes' (16 at a time).
    """
    workers = len(sends) if at_once else 16
    gate = threading.Barrier(workers) if at_once else None

    def one(send: tuple[dict[str, Any], str]) -> str:
        if gate is not None:
            gate.wait()
        reply = send_github(url, "push", send[0], secret, send[1])
        try:
            outcome = reply.json().get("outcome", "")
        except ValueError:
            outcome = "(not json)"
        return f"{reply.status_code} {outcome}".strip()

    with ThreadPoolExecutor(workers) as pool:
        if at_once:
            return Counter(pool.map(one, sends))
        sent: list[Future[str]] = []
        for _, copies in groupby(sends, key=lambda send: send[0]["after"]):
            batch = [pool.submit(one, send) for send in copies]
            wait(batch, return_when=FIRST_COMPLETED)
            sent += batch
            time.sleep(gap_s)
        return Counter(f.result() for f in sent)


def run_scenario(scenario: Scenario, timeout: float, gap_s: float = 0.0) -> bool:
    """One storm on a fresh embedded stack; prints its figures and returns whether its budget was met."""
    print(f"\n== {scenario.name}: {scenario.title}")
    work = Path(tempfile.mkdtemp(prefix=f"relaunch-storm-{scenario.name}-"))
    try:
        repo = make_repo(CHECKOUT / "examples" / "digits", work / "digits")
        pushes = payloads(repo, scenario.commits + scenario.warm)
        warm, pushes = pushes[: scenario.warm], pushes[scenario.warm :]
        specs = storm_specs(work, repo, scenario.debounce_s)
        settings = Settings(home=work / "home", pipelines_dir=specs, github_webhook_secret=SecretStr("storm"))
        with embedded_stack(settings) as stack:
            app = App(stack.settings)
            sends = scenario.sends(pushes)
            url, secret = stack.url_of("github_webhook"), stack.settings.webhook_secret() or ""
            before = warm_up(app, url, secret, warm, timeout)
            started = time.perf_counter()
            codes = blast(url, secret, sends, scenario.at_once, gap_s)
            print(f"sent {len(sends)} deliveries in {time.perf_counter() - started:.2f}s: {dict(codes)}")
            runs, settled = wait_terminal(app, timeout, before)
            elapsed = time.perf_counter() - started
            figures = report(app, settings, runs, [p["after"] for p in pushes])
            print(f"wall time to settle: {elapsed:.1f}s" + ("" if settled else f" (NOT settled: timeout {timeout}s)"))
            ok = settled and scenario.met(figures)
            print(f"budgets: {scenario.budget}: {'met' if ok else 'NOT met'}")
            return ok
    finally:
        shutil.rmtree(work, ignore_errors=True)


def warm_up(app: App, url: str, secret: str, warm: list[dict[str, Any]], timeout: float) -> set[str]:
    """Push `warm` and wait until it ended; the ids of the runs that leaves, which the storm's figures leave out."""
    if not warm:
        return set()
    for push in warm:
        send_github(url, "push", push, secret, f"warm-{push['after'][:12]}")
    runs, settled = wait_terminal(app, timeout)
    print(f"warm-up: {len(runs)} run(s) {'ended' if settled else 'NOT ended'}: {[r.state.value for r in runs]}")
    return {r.id for r in runs}


def wait_terminal(app: App, timeout: float, before: Collection[str] = ()) -> tuple[list[Any], bool]:
    """The runs (but those in `before`) once every one is terminal (True), or as they stand at the deadline (False)."""
    deadline = time.monotonic() + timeout
    while True:
        runs = [r for r in app.store.list_runs(limit=1000) if r.id not in before]
        if runs and all(r.state.terminal for r in runs):
            return runs, True
        if time.monotonic() > deadline:
            return runs, False
        time.sleep(0.2)


def report(app: App, settings: Settings, runs: list[Any], commits: list[str]) -> dict[str, int]:
    """Print the storm's figures and return the ones the budgets read."""
    sha_of = {r.id: r.trigger.sha for r in runs}
    jobs = [
        (req, st) for req, st in LocalAgent(settings.agent_path, settings.logs_dir).list_jobs() if req.run_id in sha_of
    ]
    trains = [(req, st) for req, st in jobs if req.step == "train"]
    ran = [req for req, st in trains if st.started_at is not None and st.state != "cancelled"]
    cancelled = sum(st.state == "cancelled" for _, st in trains)
    versions = [v for v in app.registry.list_versions(PIPELINE) if v.run_id in sha_of]
    states = Counter(r.state.value for r in runs)
    print(
        f"runs created: {len(runs)} for {len(commits)} distinct commits ({len(set(sha_of.values()))} seen)  "
        f"end states: {dict(states)}"
    )
    print_per_commit(runs, commits)
    print(
        f"training jobs submitted: {len(trains)}  cancelled: {cancelled}  ran (not cancelled): {len(ran)}  "
        f"completed: {sum(st.state == 'succeeded' for _, st in trains)}"
    )
    print_newest_latency(app, runs, commits[-1])
    print(f"promotions: model versions registered {len(versions)}, runs promoted {states.get('promoted', 0)}")
    duplicates = print_duplicates(jobs, runs, ran, versions, sha_of)
    print_cost(app)
    newest = int(any(r.state.value == "promoted" for r in runs if r.trigger.sha == commits[-1]))
    return {"runs": len(runs), "submitted": len(trains), "ran": len(ran), "duplicates": duplicates, "newest": newest}


def print_per_commit(runs: list[Any], commits: list[str]) -> None:
    """Each commit's runs by end state, oldest commit first, and why runs did not promote (run ids folded)."""
    quiet = 0
    for i, sha in enumerate(commits, 1):
        states = Counter(r.state.value for r in runs if r.trigger.sha == sha)
        if len(commits) > 8 and i < len(commits) and set(states) == {"superseded"}:
            quiet += 1  # a long burst's older commits, superseded as they should be: counted, not listed
            continue
        print(f"  commit {i}/{len(commits)} {sha[:7]}: {dict(states)}")
    if quiet:
        print(f"  ({quiet} older commits not listed: all their runs superseded)")
    reasons = Counter(
        f"{r.state.value}: {RUN_ID.sub('RUN', r.reason)[:140]}" for r in runs if r.state.value != "promoted"
    )
    for reason, count in reasons.most_common(6):
        print(f"  {count} x {reason}")


def print_newest_latency(app: App, runs: list[Any], newest: str) -> None:
    """Seconds from the newest push's run being written to its build (what coalescing holds) and to its training."""
    for run in sorted((r for r in runs if r.trigger.sha == newest), key=lambda r: r.created_at):
        moved = {e.data.get("to"): e.at for e in app.store.timeline(run.id) if e.kind == "state"}
        if "training" in moved:
            print(
                f"newest push -> its build started: {moved['building'] - run.created_at:.2f}s, its training "
                f"submitted: {moved['training'] - run.created_at:.2f}s (run {run.id})"
            )
            return
    print("newest push -> its training submitted: never")


def print_duplicates(jobs: list[Any], runs: list[Any], ran: list[Any], versions: list[Any], sha_of: dict) -> int:
    """Print and return the side effects that repeated: keyed jobs, runs, trainings and versions of one commit."""
    keys = sum(c - 1 for c in Counter(req.key for req, _ in jobs).values())
    extra_runs = len(runs) - len(set(sha_of.values()))
    trained = sum(c - 1 for c in Counter(sha_of.get(req.run_id) for req in ran).values())
    registered = sum(c - 1 for c in Counter(sha_of.get(v.run_id) for v in versions).values())
    total = keys + extra_runs + trained + registered
    print(
        f"duplicate side effects: {total} (job keys repeated {keys}, runs beyond one per commit {extra_runs}, "
        f"commits trained again {trained}, commits registered again {registered})"
    )
    return total


def print_cost(app: App) -> None:
    """The GPU-hours the ledger says were spent and saved."""
    entries = ledger.read(app.store)
    summary = cost.summarize(entries)
    trained_s = sum(e.train_s for e in entries if e.trained)
    print(
        f"GPU-hours spent {summary.total.gpu_hours:.4f}, saved by coalescing {summary.total.gpu_hours_saved:.4f}; "
        f"trained seconds {trained_s:.1f}; notes: {summary.notes}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--scenario", choices=("burst", "burst-debounce", "single", "resend", "one-commit", "all"), default="all"
    )
    parser.add_argument("--pushes", type=int, default=20, help="burst: pushes of consecutive commits")
    parser.add_argument("--copies", type=int, default=10, help="burst, resend: times each push is sent")
    parser.add_argument("--commits", type=int, default=4, help="resend: commits re-sent")
    parser.add_argument("--deliveries", type=int, default=16, help="one-commit: distinct deliveries of the commit")
    parser.add_argument("--debounce", type=float, default=5.0, help="burst-debounce: the spec's coalesce.debounce_s")
    parser.add_argument("--gap", type=float, default=0.0, help="burst, single: seconds between one push and the next")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds each scenario may take to settle")
    parser.add_argument("--src", default=str(SRC), help="src directory to import relaunch from (or RELAUNCH_SRC)")
    args = parser.parse_args()
    print(f"relaunch imported from {Path(relaunch.__file__).parent}; spec and example from {CHECKOUT}")
    chosen = scenarios(args)
    names = list(chosen) if args.scenario == "all" else [args.scenario]
    results = {name: run_scenario(chosen[name], args.timeout, args.gap) for name in names}
    print("\nsummary: " + ", ".join(f"{n} {'met' if ok else 'NOT met'}" for n, ok in results.items()))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
