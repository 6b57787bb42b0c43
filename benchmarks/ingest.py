"""Ingest under load: signed GitHub push webhooks from concurrent keep-alive clients against `github_webhook`, side by
side with the durable floor and a bare function.

Every target is served by functions-framework exactly as a deployment serves it (not in debug mode, so by gunicorn:
its defaults are 1 worker and 4 threads per core, overridable with WORKERS and THREADS, the same for every target):
- `bare`: a hello-world function.
- `floor`: the least any durable webhook does: verify the HMAC, parse the JSON, insert the body in SQLite and commit,
  with the durability settings relaunch's store uses (journal_mode WAL, synchronous NORMAL), before answering.
- `github_webhook`: RELAUNCH_HOME in a temporary folder and a pipeline spec watching the pushed repo. Every request
  carries a new X-GitHub-Delivery and pushes a new commit (signed again by the client: one commit pushed twice is a
  content duplicate that starts nothing), so every one really verifies the signature, writes its inbox row and a run,
  and publishes a `start_run` command.
For 1, 4 and 16 connections it prints requests per second, p50 and p99 latency, the ingest/floor ratios, and the
verdict against the goal (ingest >= 0.8x the floor's requests per second, p99 <= 2x the floor's, at every count).

The load generator runs on the same 2-core machine: client processes (threads inside them, one keep-alive
connection each) share the CPU with the server. Its CPU time is measured (getrusage in each client process) and
printed next to the server's (/proc of the server and its gunicorn workers), per request, so the figures can be read
knowing who spent what; `--pin` puts the server on CPU 0 and the clients on CPU 1 instead.
`--src PATH` (or RELAUNCH_SRC) chooses the `src` directory imported, by this script and by the servers it starts, so
an older checkout can be measured with the same script.
Run on demand: `python3 benchmarks/ingest.py [--seconds 5] [--connections 1 4 16] [--pin] [--src PATH]`.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import multiprocessing as mp
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from checkout import ROOT, SRC  # before relaunch: it chooses which relaunch is imported below

from relaunch.adapters.local.stack import free_port  # noqa: E402
from relaunch.simulate import git, github_headers, push_payload  # noqa: E402

SECRET = "bench-secret"
REPO = "relaunch-demo/digits"  # watched by pipelines/digits.yaml
GOAL_RATIO, GOAL_P99 = 0.8, 2.0  # ingest/floor: requests per second at least, p99 latency at most
BARE = textwrap.dedent(
    """
    import functions_framework

    @functions_framework.http
    def hello(request):
        return "hello"
    """
)
# The durable floor: what any webhook that keeps its deliveries must do before a 2xx, and nothing else. One
# connection per process behind a lock (SQLite has one writer at a time), opened on first use, as the store does.
FLOOR = textwrap.dedent(
    """
    import hashlib, hmac, json, os, sqlite3, threading

    import functions_framework

    SECRET = os.environ["RELAUNCH_GITHUB_WEBHOOK_SECRET"].encode()
    PATH = os.path.join(os.environ["RELAUNCH_HOME"], "floor.db")
    _lock, _conn = threading.Lock(), []

    def _db():
        if not _conn:
            conn = sqlite3.connect(PATH, isolation_level=None, check_same_thread=False, timeout=5)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS inbox (key TEXT PRIMARY KEY, body TEXT NOT NULL)")
            _conn.append(conn)
        return _conn[0]

    @functions_framework.http
    def floor(request):
        body = request.get_data(cache=False)
        expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", "")):
            return "bad signature", 401
        json.loads(body)
        with _lock:
            conn = _db()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO inbox VALUES (?, ?)", (request.headers["X-GitHub-Delivery"], body.decode()))
            conn.execute("COMMIT")
        return '{"outcome": "accepted"}', 202, {"Content-Type": "application/json"}
    """
)


@dataclass(frozen=True)
class Target:
    """One server under test: what to start and what each request looks like."""

    label: str
    function: str
    source: Path
    body: bytes
    headers: dict[str, str]  # X-GitHub-Delivery is replaced on every request when present
    expect: int
    commit: bytes = b""  # when set: every request pushes a new commit in its place, signed again (content dedupe)


@dataclass(frozen=True)
class Result:
    """One measurement: a target at a number of connections."""

    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    client_cpu_s: float
    server_cpu_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def signed_push(work: Path) -> tuple[bytes, dict[str, str], bytes]:
    """A real-format push of a commit touching train.py in a throwaway repo, signed as GitHub signs it; its commit."""
    repo = work / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "train.py").write_text("print('train')\n")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=bench", "-c", "user.email=bench@relaunch.invalid", "commit", "-qm", "bench")
    payload = push_payload(repo, full_name=REPO)
    body = json.dumps(payload).encode()
    return body, github_headers("push", body, SECRET, "placeholder"), str(payload["after"]).encode()


def start_server(
    target: Target, env: dict[str, str], log: Path, cpu: int | None
) -> tuple[subprocess.Popen[bytes], int]:
    """functions-framework (gunicorn) serving the target on a free loopback port, once it answers."""
    port = free_port()
    argv = [sys.executable, "-m", "functions_framework", "--target", target.function, "--source", str(target.source)]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu), *argv]
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=out, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/")
            conn.getresponse().read()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{target.label} exited with {proc.returncode}; see {log}") from None
            time.sleep(0.05)
    stop_server(proc)
    raise TimeoutError(f"{target.label} did not listen within 60 s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def tree_cpu_seconds(pid: int) -> float:
    """utime+stime of a process and its children (gunicorn's master and workers), from /proc."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:  # fields[1] is the parent pid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _client(port: int, target: Target, threads: int, start_at: float, stop_at: float, out: mp.Queue) -> None:
    """One load-generator process: `threads` keep-alive connections, each sending requests back to back."""
    lock, latencies, counts = threading.Lock(), [], {"ok": 0, "errors": 0}

    def connection() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, ok, errors = [], 0, 0
        headers = dict(target.headers)
        while time.time() < start_at:  # warm: open the connection before the clock starts
            time.sleep(0.001)
        while (now := time.time()) < stop_at:
            body = target.body
            if "X-GitHub-Delivery" in headers:
                headers["X-GitHub-Delivery"] = str(uuid.uuid4())
            if target.commit:  # a new commit each time: the same one would be answered "duplicate" (content dedupe)
                body = body.replace(target.commit, (uuid.uuid4().hex + uuid.uuid4().hex[:8]).encode())
                digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                headers["X-Hub-Signature-256"] = f"sha256={digest}"
            conn.request("POST", "/", body=body, headers=headers)
            reply = conn.getresponse()
            reply.read()
            mine.append((time.time() - now) * 1000)
            ok, errors = (ok + 1, errors) if reply.status == target.expect else (ok, errors + 1)
        conn.close()
        with lock:
            latencies.extend(mine)
            counts["ok"] += ok
            counts["errors"] += errors

    workers = [threading.Thread(target=connection) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.put((counts["ok"], counts["errors"], latencies, usage.ru_utime + usage.ru_stime))


def measure(port: int, server_pid: int, target: Target, connections: int, seconds: float, cpu: int | None) -> Result:
    """Drive `connections` connections for `seconds` from min(connections, 2) client processes."""
    processes = min(connections, 2)
    per_process = [connections // processes + (i < connections % processes) for i in range(processes)]
    ctx = mp.get_context("fork")
    queue: mp.Queue = ctx.Queue()
    start_at = time.time() + 0.5
    stop_at = start_at + seconds
    clients = [
        ctx.Process(target=_pinned_client, args=(cpu, port, target, n, start_at, stop_at, queue)) for n in per_process
    ]
    for client in clients:
        client.start()
    while time.time() < start_at:
        time.sleep(0.001)
    server_before = tree_cpu_seconds(server_pid)
    parts = [queue.get(timeout=seconds + 120) for _ in clients]
    server_cpu = tree_cpu_seconds(server_pid) - server_before
    for client in clients:
        client.join()
    latencies = [ms for part in parts for ms in part[2]]
    return Result(
        requests=sum(p[0] for p in parts),
        errors=sum(p[1] for p in parts),
        seconds=seconds,
        latencies_ms=latencies,
        client_cpu_s=sum(p[3] for p in parts),
        server_cpu_s=server_cpu,
    )


def _pinned_client(cpu: int | None, *args: object) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    _client(*args)  # type: ignore[arg-type]


def ingested(home: Path) -> tuple[int, int, int]:
    """Inbox rows, runs and published messages written so far (the proof each request did the whole job)."""
    with sqlite3.connect(home / "relaunch.db") as store, sqlite3.connect(home / "bus.db") as bus:
        inbox = store.execute("SELECT COUNT(*) FROM inbox").fetchone()[0]
        runs = store.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        published = bus.execute("SELECT COUNT(*) FROM bus_messages").fetchone()[0]
    return int(inbox), int(runs), int(published)


def bench(target: Target, env: dict[str, str], work: Path, args: argparse.Namespace) -> dict[int, Result]:
    server_cpu, client_cpu = (0, 1) if args.pin else (None, None)
    proc, port = start_server(target, env, work / f"{target.function}.log", server_cpu)
    results: dict[int, Result] = {}
    try:
        measure(port, proc.pid, target, 4, 1.0, client_cpu)  # warm-up: imports, first connections, SQLite pages
        for connections in args.connections:
            result = results[connections] = measure(port, proc.pid, target, connections, args.seconds, client_cpu)
            print(
                f"{target.label:16} c={connections:<3} {result.rps:8.1f} req/s  p50 {result.percentile(0.50):6.2f} ms"
                f"  p99 {result.percentile(0.99):6.2f} ms  errors {result.errors}  cpu/req: server"
                f" {result.server_cpu_s / max(1, result.requests) * 1000:.2f} ms,"
                f" client {result.client_cpu_s / max(1, result.requests) * 1000:.2f} ms",
                flush=True,
            )
    finally:
        stop_server(proc)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per connection count")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--pin", action="store_true", help="server on CPU 0, load generator on CPU 1")
    parser.add_argument("--src", default=str(SRC), help="src directory to import relaunch from (or RELAUNCH_SRC)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="relaunch-ingest-") as tmp:
        work = Path(tmp)
        (work / "bare.py").write_text(BARE)
        (work / "floor.py").write_text(FLOOR)
        home = work / "home"
        home.mkdir(mode=0o700)
        env = {
            **os.environ,
            "RELAUNCH_HOME": str(home),
            "RELAUNCH_GITHUB_WEBHOOK_SECRET": SECRET,
            "RELAUNCH_PIPELINES_DIR": str(ROOT / "pipelines"),
        }
        body, headers, commit = signed_push(work)
        source = SRC / "relaunch" / "functions" / "main.py"
        targets = [
            Target("bare", "hello", work / "bare.py", b"", {"Content-Type": "text/plain"}, 200),
            Target("floor", "floor", work / "floor.py", body, headers, 202, commit),
            Target("github_webhook", "github_webhook", source, body, headers, 202, commit),
        ]
        print(
            f"{os.cpu_count()} CPUs; src {SRC}; server: functions-framework/gunicorn,"
            f" WORKERS={os.environ.get('WORKERS', 1)} THREADS={os.environ.get('THREADS', (os.cpu_count() or 1) * 4)};"
            f" {args.seconds:g} s per point"
            f"{'; server on CPU 0, clients on CPU 1' if args.pin else '; server and clients share the CPUs'}"
        )
        bare, floor, ingest = (bench(target, env, work, args) for target in targets)
        inbox, runs, published = ingested(home)
        measured = sum(r.requests + r.errors for r in ingest.values())
        print(f"ingest wrote {inbox} inbox rows, {runs} runs, {published} commands ({measured} measured + warm-up)")
        print(verdict(bare, floor, ingest, args.connections))


def verdict(bare: dict[int, Result], floor: dict[int, Result], ingest: dict[int, Result], counts: list[int]) -> str:
    """The side-by-side table (req/s and p99 of each target, ingest/floor ratios) and the verdict against the goal."""
    lines = [
        f"{'conns':>5} | {'req/s: bare':>11} {'floor':>7} {'ingest':>7} {'ingest/floor':>12} | {'p99 ms: bare':>12}"
        f" {'floor':>6} {'ingest':>6} {'ingest/floor':>12}"
    ]
    met = True
    for n in counts:
        rps = ingest[n].rps / floor[n].rps
        p99 = ingest[n].percentile(0.99) / floor[n].percentile(0.99)
        met = met and rps >= GOAL_RATIO and p99 <= GOAL_P99 and not ingest[n].errors
        lines.append(
            f"{n:>5} | {bare[n].rps:11.0f} {floor[n].rps:7.0f} {ingest[n].rps:7.0f} {rps:11.2f}x |"
            f" {bare[n].percentile(0.99):12.1f} {floor[n].percentile(0.99):6.1f} {ingest[n].percentile(0.99):6.1f}"
            f" {p99:11.2f}x"
        )
    goal = f"goal: ingest >= {GOAL_RATIO}x the floor's req/s and p99 <= {GOAL_P99:g}x the floor's at every count"
    lines.append(f"{goal}: {'meets' if met else 'MISSES'}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
