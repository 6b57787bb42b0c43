"""What one webhook delivery costs the embedded store, counted rather than timed: database pages (WAL frames) written
to relaunch.db and bus.db, SQL statements run, and CPU time, per signed push through the real ingest path.

Wall-clock requests per second on a shared, loaded machine says little about a change of a few pages; these counts
are deterministic. Each delivery pushes a new commit under a new X-GitHub-Delivery (so each one writes its inbox row,
a run, its first timeline entry, its content claim and its start_run command), one at a time, in-process, through
`relaunch.bootstrap.App` with a temporary RELAUNCH_HOME and the checkout's pipeline specs. The checkpoint thread is
kept asleep, so each file's WAL only grows: its growth over a delivery, in frames of page_size + 24 bytes, is the
pages that delivery's commit wrote. `--runs` first writes that many runs (in bulk, straight into the store) so the
B-trees are as deep as a store that has lived a while.
`--src PATH` (or RELAUNCH_SRC) chooses the `src` directory imported, so an older checkout is measured the same way.
Run: `python3 benchmarks/ingest_pages.py [--deliveries 200] [--runs 0] [--src PATH]`.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

from checkout import CHECKOUT, SRC  # before relaunch: it chooses which relaunch is imported below
from ingest import SECRET, signed_push
from pydantic import SecretStr  # noqa: E402

from relaunch.adapters.local import sqlite as plumbing  # noqa: E402
from relaunch.adapters.local.bus import SqliteBus  # noqa: E402
from relaunch.bootstrap import App  # noqa: E402
from relaunch.settings import Settings  # noqa: E402
from relaunch.triggers.github import parse_github  # noqa: E402

REPO = "relaunch-demo/digits"  # watched by pipelines/digits.yaml
WAL_HEADER, FRAME_HEADER = 32, 24
FILES = ("relaunch.db", "bus.db")


class Pushes:
    """Real-format pushes (benchmarks/ingest.py's), each of a new commit under a new delivery id, signed again."""

    def __init__(self, work: Path) -> None:
        self.body, self.headers, self.commit = signed_push(work)

    def next(self) -> tuple[dict[str, str], bytes]:
        body = self.body.replace(self.commit, (uuid.uuid4().hex + uuid.uuid4().hex[:8]).encode())
        digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {**self.headers, "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": f"sha256={digest}"}
        return headers, body


def deliver(app: App, pushes: Pushes) -> None:
    headers, body = pushes.next()
    reply = app.ingest.github(parse_github(headers, body, secret=SECRET), headers, body)
    if reply.status != 202:
        raise RuntimeError(f"a push was answered {reply.status}: {reply.body}")


def frames(home: Path, page_sizes: dict[str, int]) -> dict[str, int]:
    """Frames in each file's WAL so far."""
    counts = {}
    for name, page in page_sizes.items():
        wal = home / f"{name}-wal"
        size = wal.stat().st_size if wal.exists() else 0
        counts[name] = max(0, size - WAL_HEADER) // (page + FRAME_HEADER)
    return counts


def written_pages(home: Path, name: str, page: int, skip: int) -> list[int]:
    """The page number of every WAL frame of `name` after its first `skip` frames."""
    data = (home / f"{name}-wal").read_bytes() if (home / f"{name}-wal").exists() else b""
    offsets = range(WAL_HEADER + skip * (page + FRAME_HEADER), len(data), page + FRAME_HEADER)
    return [int.from_bytes(data[at : at + 4], "big") for at in offsets if at + FRAME_HEADER + page <= len(data)]


def by_btree(home: Path, name: str, pages: list[int]) -> dict[str, int]:
    """How many of those frames each table or index took (dbstat names each page's B-tree)."""
    with sqlite3.connect(home / name) as conn:
        owner = dict(conn.execute("SELECT pageno, name FROM dbstat"))
    counts: dict[str, int] = {}
    for number in pages:
        label = owner.get(number, "header" if number == 1 else "other (freelist, new)")
        counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def traced(statements: list[str]) -> None:
    """Record every statement of every connection opened from now on (the store opens them through `connect`)."""
    real = plumbing.connect

    def connect(path: Path) -> sqlite3.Connection:
        conn = real(path)
        conn.set_trace_callback(statements.append)
        return conn

    plumbing.connect = connect  # type: ignore[assignment]


def preload(app: App, runs: int) -> None:
    """Write `runs` deliveries with a run each straight through the store, one transaction each."""
    from relaunch.domain.model import Delivery, PipelineRun, Trigger

    for n in range(runs):
        trigger = Trigger(kind="push", delivery_key=f"pre-{n}", repo=REPO, sha=f"{n:040x}")
        run = PipelineRun(id=f"pre-{n}", pipeline="digits", trigger=trigger, content_key=f"pre-{n}")
        app.store.record_delivery(Delivery(key=f"pre-{n}", source="github"), [run])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=200, help="pushes measured, one at a time")
    parser.add_argument("--runs", type=int, default=0, help="runs written before measuring (an older store)")
    parser.add_argument(
        "--subscribed", action="store_true", help="the orchestrator subscribed (as under `relaunch up`): a delivery row"
    )
    parser.add_argument("--src", default=str(SRC), help="src directory to import relaunch from (or RELAUNCH_SRC)")
    args = parser.parse_args()
    plumbing.CHECKPOINT_INTERVAL_S = 10.0**9  # the checkpoint thread sleeps: each WAL only grows
    statements: list[str] = []
    traced(statements)
    with tempfile.TemporaryDirectory(prefix="relaunch-pages-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir(mode=0o700)
        settings = Settings(home=home, pipelines_dir=CHECKOUT / "pipelines", github_webhook_secret=SecretStr(SECRET))
        app, pushes = App(settings), Pushes(Path(tmp))
        if args.subscribed:
            subscriber = SqliteBus(settings.bus_path)  # nobody dispatches: the deliveries wait, as written
            subscriber.subscribe("orchestrator", settings.pubsub_commands_topic, "http://127.0.0.1:9/")
            subscriber.close()
        preload(app, args.runs)
        deliver(app, pushes)  # warm: schemas, connections, spec cache
        page_sizes = {}
        for name in FILES:
            with sqlite3.connect(home / name) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # start from empty WALs (nobody else writes now)
                page_sizes[name] = int(conn.execute("PRAGMA page_size").fetchone()[0])
        statements.clear()
        before, per_delivery = frames(home, page_sizes), {name: list[int]() for name in FILES}
        cpu = time.process_time()
        for _ in range(args.deliveries):
            deliver(app, pushes)
            after = frames(home, page_sizes)
            for name in FILES:
                per_delivery[name].append(after[name] - before[name])
            before = after
        cpu = time.process_time() - cpu
        app.store.close()  # type: ignore[attr-defined]
        tables = {name: by_btree(home, name, written_pages(home, name, page_sizes[name], 0)) for name in FILES}
    n = args.deliveries
    subscribed = "the orchestrator subscribed" if args.subscribed else "no subscription"
    print(f"src {SRC}; {n} deliveries, one at a time, after {args.runs} runs; {subscribed}")
    for name in FILES:
        counts = sorted(per_delivery[name])
        print(
            f"{name:11} pages/delivery: mean {sum(counts) / n:5.2f}  min {counts[0]}  median {counts[n // 2]}"
            f"  max {counts[-1]}"
        )
        print("    by B-tree: " + ", ".join(f"{table} {count / n:.2f}" for table, count in tables[name].items()))
    verbs: dict[str, int] = {}
    for sql in statements:
        verb = sql.split()[0].upper()
        verbs[verb] = verbs.get(verb, 0) + 1
    shown = ", ".join(f"{verb} {count / n:.2f}" for verb, count in sorted(verbs.items()))
    print(f"statements/delivery: {len(statements) / n:.2f} ({shown})")
    print(f"CPU/delivery: {cpu / n * 1000:.2f} ms (process time; the reads and frame counting of this script included)")


if __name__ == "__main__":
    main()
