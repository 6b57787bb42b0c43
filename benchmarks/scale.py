"""The store as it grows: ingest latency and the listing commands at 0, 1k, 10k, 30k and 100,000 runs.

The store is filled THROUGH THE REAL WEBHOOK: `github_webhook` served by functions-framework (gunicorn, as a
deployment serves it), every request a signed push of a new commit under a new delivery id, so each one verifies the
signature, writes its inbox row and a run, and publishes a `start_run` command. Only the webhook runs (no
orchestrator): the commands pile up in the bus and every run stays `received`, the worst case for any listing that
reads the runs in flight. Filling uses several connections; at each step the ingest p50/p99 is measured over a window
of requests on ONE connection, then each listing command is run as a user runs it (`python -m relaunch ...` against
that RELAUNCH_HOME) and its wall time taken (median of `--repeat`). Last, every run but 10 is marked finished, as an
orchestrator would have left them, and what each orchestrator step reads (active_runs) and `gc --dry-run` are timed.
Goal (issue 20): ingest p50 <= 2 ms and `relaunch runs` <= 0.5 s at 100,000 runs.

Run on demand: `python3 benchmarks/scale.py [--max 100000] [--window 500] [--src PATH]`; `--src PATH` (or
RELAUNCH_SRC) chooses the `src` directory imported, by this script and by every process it starts, so an older
checkout can be measured too.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import multiprocessing as mp
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from checkout import CHECKOUT, SRC  # before relaunch: it chooses which relaunch is imported below
from ingest import SECRET, Target, signed_push, start_server, stop_server  # the same server and pushes

STEPS = (0, 1_000, 10_000, 30_000, 100_000)
# The commands that read the store's runs, inbox or ledger, as a user types them.
COMMANDS = {
    "runs": ["runs"],
    "runs --json": ["runs", "--json"],
    "runs show": ["runs", "show"],
    "inbox": ["inbox"],
    "cost": ["cost"],
    "gc --dry-run": ["gc", "--dry-run"],
}


def push(conn: http.client.HTTPConnection, push: tuple[bytes, dict[str, str], bytes]) -> tuple[float, int]:
    """Send one signed push of a new commit under a new delivery id; its latency (ms) and status."""
    body, headers, commit = push
    body = body.replace(commit, (uuid.uuid4().hex + uuid.uuid4().hex[:8]).encode())
    headers = {**headers, "X-GitHub-Delivery": str(uuid.uuid4())}
    headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    started = time.perf_counter()
    conn.request("POST", "/", body=body, headers=headers)
    reply = conn.getresponse()
    reply.read()
    return (time.perf_counter() - started) * 1000, reply.status


def _filler(port: int, template: tuple[bytes, dict[str, str], bytes], counts: list[int], out: mp.Queue) -> None:
    """One client process: a keep-alive connection per thread, each sending its count of pushes back to back."""
    errors = [0] * len(counts)

    def connection(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(counts[i]):
            errors[i] += push(conn, template)[1] != 202
        conn.close()

    threads = [threading.Thread(target=connection, args=(i,)) for i in range(len(counts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put(sum(errors))


def fill(port: int, template: tuple[bytes, dict[str, str], bytes], n: int, connections: int) -> int:
    """Send `n` pushes over `connections` connections from two client processes; the non-202 answers."""
    if n <= 0:
        return 0
    per = [n // connections + (i < n % connections) for i in range(connections)]
    ctx = mp.get_context("fork")
    queue: mp.Queue = ctx.Queue()
    halves = [per[0::2], per[1::2]]
    clients = [ctx.Process(target=_filler, args=(port, template, half, queue)) for half in halves if half]
    for client in clients:
        client.start()
    errors = sum(queue.get(timeout=3600) for _ in clients)
    for client in clients:
        client.join()
    return errors


def window(port: int, template: tuple[bytes, dict[str, str], bytes], n: int) -> tuple[float, float, int]:
    """Ingest p50 and p99 (ms) over `n` pushes on one connection (after 20 unmeasured ones), and the errors."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(20):
        push(conn, template)
    measured = [push(conn, template) for _ in range(n)]
    conn.close()
    latencies = sorted(ms for ms, _ in measured)
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    return statistics.median(latencies), p99, sum(status != 202 for _, status in measured)


def command_seconds(argv: list[str], env: dict[str, str], repeat: int) -> float:
    """The median wall time of `python -m relaunch ARGV` (a failing command is reported, not timed)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "relaunch", *argv], env=env, capture_output=True)
        times.append(time.perf_counter() - started)
        if done.returncode not in (0, 1):  # gc and runs show exit 1 for "nothing to do"
            raise RuntimeError(f"relaunch {' '.join(argv)} exited {done.returncode}: {done.stderr[-500:]!r}")
    return statistics.median(times)


def finished(home: Path, env: dict[str, str], in_flight: int, repeat: int) -> None:
    """The store as an orchestrator leaves it: every run but `in_flight` finished (set in the file directly). What
    every orchestrator step and the reconcile tick read (active_runs), and `relaunch gc --dry-run`, timed then."""
    from relaunch.adapters.local.sqlite_store import SqliteRunStore

    with sqlite3.connect(home / "relaunch.db") as db:
        newest = [row[0] for row in db.execute("SELECT id FROM runs ORDER BY rowid DESC LIMIT ?", (in_flight,))]
        marks = ",".join("?" * len(newest))
        db.execute(f"UPDATE runs SET state = 'superseded' WHERE id NOT IN ({marks})", newest)
    store = SqliteRunStore(home / "relaunch.db")
    try:
        times = []
        for _ in range(max(repeat, 5)):
            started = time.perf_counter()
            found = len(store.active_runs("digits"))
            times.append((time.perf_counter() - started) * 1000)
    finally:
        store.close()
    gc = command_seconds(COMMANDS["gc --dry-run"], env, repeat)
    print(
        f"all but {in_flight} finished: active_runs {statistics.median(times):.2f} ms ({found} runs),"
        f" gc --dry-run {gc:.3f} s"
    )


def stored_runs(home: Path) -> int:
    with sqlite3.connect(home / "relaunch.db") as store:
        return int(store.execute("SELECT COUNT(*) FROM runs").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", default=str(SRC), help="src directory to import relaunch from (or RELAUNCH_SRC)")
    parser.add_argument("--max", type=int, default=STEPS[-1], help="fill up to this many runs (default 100000)")
    parser.add_argument("--window", type=int, default=500, help="measured requests per step, on one connection")
    parser.add_argument("--fill-connections", type=int, default=4, help="connections while filling")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each command per step (median)")
    parser.add_argument("--commands", nargs="+", choices=list(COMMANDS), default=list(COMMANDS))
    parser.add_argument("--keep", action="store_true", help="keep the filled state folder (its path is printed)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed run still stops its server and cleans up
    steps = sorted({s for s in STEPS if s < args.max} | {args.max})
    print(f"src {SRC}; {os.cpu_count()} CPUs; window {args.window} requests on 1 connection; steps {steps}")
    work = Path(tempfile.mkdtemp(prefix="relaunch-scale-"))
    home = work / "home"
    try:
        env = {
            **os.environ,
            "RELAUNCH_HOME": str(home),
            "RELAUNCH_GITHUB_WEBHOOK_SECRET": SECRET,
            "RELAUNCH_PIPELINES_DIR": str(CHECKOUT / "pipelines"),
        }
        template = signed_push(work)
        webhook = Target(
            "github_webhook", "github_webhook", SRC / "relaunch" / "functions" / "main.py", *template[:2], 202
        )
        proc, port = start_server(webhook, env, work / "github_webhook.log", None)
        try:
            print(f"{'runs':>8}  {'ingest p50':>10}  {'p99':>8}  " + "  ".join(f"{name:>13}" for name in args.commands))
            for step in steps:
                # The measuring window adds runs too: fill to the step counting them.
                errors = fill(port, template, step - stored_runs(home) if step else 0, args.fill_connections)
                p50, p99, measured_errors = window(port, template, args.window)
                at = stored_runs(home)
                timed = [command_seconds(COMMANDS[name], env, args.repeat) for name in args.commands]
                print(
                    f"{at:>8}  {p50:8.2f} ms  {p99:5.2f} ms  "
                    + "  ".join(f"{s:11.3f} s" for s in timed)
                    + (f"  ({errors + measured_errors} non-202 answers)" if errors + measured_errors else ""),
                    flush=True,
                )
        finally:
            stop_server(proc)
        finished(home, env, 10, args.repeat)
    finally:
        if args.keep:
            print(f"kept: RELAUNCH_HOME={home}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
