"""Ingest under load: signed GitHub push webhooks from concurrent keep-alive clients against `github_webhook`.

`github_webhook` is served by functions-framework exactly as a deployment serves it (not in debug mode, so by
gunicorn: its defaults are 1 worker and 4 threads per core, overridable with WORKERS and THREADS), with
RELAUNCH_HOME in a temporary folder and a pipeline spec watching the pushed repo: every request carries a new
X-GitHub-Delivery and pushes a new commit (signed again by the client: one commit pushed twice is a content
duplicate that starts nothing), so every one really verifies the signature, writes its inbox row and a run, and
publishes a `start_run` command. Next to it, a bare hello-world function on the same server setup. For 1, 4 and 16
connections it prints requests per second, p50 and p99 latency, and the ingest/bare ratio, against the budget
(ingest >= 0.7x bare requests per second, p99 <= 25 ms at 16 connections).

The load generator runs on the same 2-core machine: client processes (threads inside them, one keep-alive
connection each) share the CPU with the server. Its CPU time is measured (getrusage in each client process) and
printed next to the server's (/proc of the server and its gunicorn workers), per request, so the figures can be read
knowing who spent what; `--pin` puts the server on CPU 0 and the clients on CPU 1 instead.
Run on demand: `python3 benchmarks/ingest.py [--seconds 5] [--connections 1 4 16] [--pin]`.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from relaunch.adapters.local.stack import free_port  # noqa: E402
from relaunch.simulate import git, github_headers, push_payload  # noqa: E402

SECRET = "bench-secret"
REPO = "relaunch-demo/digits"  # watched by pipelines/digits.yaml
BUDGET_RATIO, BUDGET_P99_MS, BUDGET_AT = 0.7, 25.0, 16
BARE = textwrap.dedent(
    """
    import functions_framework

    @functions_framework.http
    def hello(request):
        return "hello"
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="relaunch-ingest-") as tmp:
        work = Path(tmp)
        (work / "bare.py").write_text(BARE)
        home = work / "home"
        env = {
            **os.environ,
            "RELAUNCH_HOME": str(home),
            "RELAUNCH_GITHUB_WEBHOOK_SECRET": SECRET,
            "RELAUNCH_PIPELINES_DIR": str(ROOT / "pipelines"),
        }
        body, headers, commit = signed_push(work)
        source = ROOT / "src" / "relaunch" / "functions" / "main.py"
        targets = [
            Target("bare hello-world", "hello", work / "bare.py", b"", {"Content-Type": "text/plain"}, 200),
            Target("github_webhook", "github_webhook", source, body, headers, 202, commit),
        ]
        print(
            f"{os.cpu_count()} CPUs; server: functions-framework/gunicorn, WORKERS={os.environ.get('WORKERS', 1)}"
            f" THREADS={os.environ.get('THREADS', (os.cpu_count() or 1) * 4)}; {args.seconds:g} s per point"
            f"{'; server on CPU 0, clients on CPU 1' if args.pin else '; server and clients share the CPUs'}"
        )
        bare, ingest = (bench(target, env, work, args) for target in targets)
        inbox, runs, published = ingested(home)
        measured = sum(r.requests + r.errors for r in ingest.values())
        print(f"ingest wrote {inbox} inbox rows, {runs} runs, {published} commands ({measured} measured + warm-up)")
        for connections in args.connections:
            ratio = ingest[connections].rps / bare[connections].rps
            print(f"c={connections:<3} ingest/bare requests per second: {ratio:.2f}x")
        at = ingest.get(BUDGET_AT)
        if at is not None:
            ratio = at.rps / bare[BUDGET_AT].rps
            p99 = at.percentile(0.99)
            verdict = "meets" if ratio >= BUDGET_RATIO and p99 <= BUDGET_P99_MS else "MISSES"
            print(
                f"budget at c={BUDGET_AT}: ratio {ratio:.2f}x (>= {BUDGET_RATIO}x), p99 {p99:.1f} ms"
                f" (<= {BUDGET_P99_MS:g} ms): {verdict}"
            )


if __name__ == "__main__":
    main()
