"""Job end -> next stage on the gcp profile: the Vertex job event path against the reconcile tick alone.

Firestore and Pub/Sub run as Google's emulators, Vertex AI as the fake in tests/vertex_server.py; the functions run
under functions-framework on loopback, fed by the emulator's push subscriptions exactly as deploy wires them
(triggers/relaunch.yaml). Each sample: a `digits` run is TRAINING on a real CustomJob in the fake; at t0 the job
becomes JOB_STATE_SUCCEEDED, and the sample ends when Firestore holds the run in EVALUATING with its evaluation job
submitted (the orchestrator read the job's state from the Vertex API and started the next stage).

- `events` (what deploy wires now): at t0 the benchmark publishes the job's service log entry to
  relaunch-vertex-jobs, as the Cloud Logging sink does; the vertex_job function wakes the run. Cloud Logging's own
  routing delay (entry written -> published by the sink) is not in the figure: there is no emulator of it.
- `demo`: `relaunch demo --profile gcp-emulated` itself (every function deployed from the triggers file, the Vertex
  stand-in really running the jobs and publishing their end as the sink does): for each of the story's four jobs,
  the job's endTime (Vertex) to the run's next state in its timeline (Firestore).
- `reconcile` (all there was before): only the reconcile function notices, on Cloud Scheduler's tick (deployed
  every minute, `--tick` here), once the run has been quiet for reconcile's poll_after_s (60 s).

    python3 benchmarks/job_events.py --mode demo -n 2     # in the gcp-emulated demo: every job of the story
    python3 benchmarks/job_events.py                      # events, 10 samples
    python3 benchmarks/job_events.py --mode reconcile -n 3 --tick 60
    PYTHONPATH=/tmp/before/src python3 benchmarks/job_events.py --mode reconcile   # the code before the change
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for entry in (str(ROOT), str(ROOT / "src")):
    if entry not in sys.path:
        sys.path.insert(1, entry)  # after PYTHONPATH: a `before` tree given there is the one measured

from benchmarks.gcp_first_event import PROJECT, gcp_stack, seed_run  # noqa: E402

SAMPLE = ROOT / "tests" / "samples" / "vertex" / "customjob_service_logentry.json"
GOAL_S = 5.0


@contextmanager
def served(names: list[str]) -> Iterator[dict[str, str]]:
    """Each function on its own loopback server (apps created one at a time: creation is not thread-safe)."""
    import functions_framework
    from werkzeug.serving import make_server

    import relaunch.functions.main as entry

    source = entry.__file__
    servers = {n: make_server("127.0.0.1", 0, functions_framework.create_app(n, source), threaded=True) for n in names}
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers.values()]
    for thread in threads:
        thread.start()
    try:
        yield {n: f"http://127.0.0.1:{s.server_port}/" for n, s in servers.items()}
    finally:
        for server in servers.values():
            server.shutdown()


def log_entry(job_name: str) -> dict[str, Any]:
    entry: dict[str, Any] = copy.deepcopy(json.loads(SAMPLE.read_text()))
    entry["resource"]["labels"].update(job_id=job_name.rsplit("/", 1)[-1], project_id=PROJECT)
    return entry


def training_run(app: Any, store: Any, cloudbuild: Any) -> tuple[str, str]:
    """A run moved to TRAINING by the real orchestrator (its Cloud Build build succeeded): id and CustomJob name."""
    from relaunch.domain.commands import BuildFinished, StartRun
    from relaunch.domain.model import RunState

    run_id = seed_run(store)
    app.orchestrator.handle(StartRun(run_id=run_id))
    run = store.get_run(run_id)
    cloudbuild.finish(run.build_id, "SUCCESS", digest="sha256:" + "a" * 64)
    app.orchestrator.handle(BuildFinished(run_id=run_id, build_id=run.build_id, succeeded=True))
    run = store.get_run(run_id)
    if run.state is not RunState.TRAINING:
        raise RuntimeError(f"run {run_id} is {run.state.value}, not training: {run.reason}")
    return run_id, run.jobs["train"]


def sample(app: Any, store: Any, fakes: tuple[Any, Any], bus: Any, mode: str) -> float:
    from relaunch.domain.model import RunState

    vertex, cloudbuild = fakes
    run_id, job = training_run(app, store, cloudbuild)
    if mode == "reconcile":
        time.sleep(random.uniform(0, 60))  # the job ends at any moment of the tick's period
    vertex.set_job(job, state="JOB_STATE_SUCCEEDED", endTime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    t0 = time.perf_counter()
    if mode == "events":
        from relaunch.domain.commands import VERTEX_JOBS_TOPIC  # (the code before the change has no such topic)

        bus.publish(VERTEX_JOBS_TOPIC, log_entry(job))
    deadline = t0 + 300
    while time.perf_counter() < deadline:
        run = store.get_run(run_id)
        if run.state is RunState.EVALUATING and "evaluate" in run.jobs:
            return time.perf_counter() - t0
        time.sleep(0.05)
    raise TimeoutError(f"run {run_id} still {store.get_run(run_id).state.value} after 300 s")


def ticker(bus: Any, every_s: float, stop: threading.Event) -> None:
    """Cloud Scheduler's part: a reconcile tick on the reconcile topic every `every_s` seconds."""
    from relaunch.domain.commands import RECONCILE_TOPIC

    while not stop.wait(every_s):
        bus.publish(RECONCILE_TOPIC, {"tick": time.time()})


def demo_samples() -> list[float]:
    """Job end -> next state, for each job of one gcp-emulated demo run."""
    import io
    from datetime import datetime

    from relaunch.emulated.demo_gcp import GcpTarget, gcp_scenario

    found: list[float] = []
    leaves = {"train": "training", "evaluate": "evaluating"}

    def inspect(target: GcpTarget) -> None:
        assert target.cloud.vertex is not None
        for job in target.cloud.vertex.jobs.values():
            ended = datetime.fromisoformat(job["endTime"].replace("Z", "+00:00")).timestamp()
            run_id = next(run.id for run in target.app.store.list_runs() if job["name"] in run.jobs.values())
            left = leaves[job["labels"]["relaunch-step"]]
            timeline = target.app.store.timeline(run_id)
            moved = next(e.at for e in timeline if e.kind == "state" and e.data.get("from") == left)
            found.append(moved - ended)

    logging.disable(logging.INFO)
    gcp_scenario(io.StringIO(), inspect=inspect)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=["events", "reconcile", "demo"], default="events")
    parser.add_argument("-n", type=int, default=10, help="samples")
    parser.add_argument("--tick", type=float, default=60.0, help="reconcile tick period, s (deployed: 60)")
    args = parser.parse_args()
    if args.mode == "demo":
        report(args.mode, [s for _ in range(args.n) for s in demo_samples()])
        return

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        from tests.vertex_server import VertexServer

        env, cloudbuild = stack.enter_context(gcp_stack(Path(tmp)))
        vertex = stack.enter_context(VertexServer())
        os.environ.update({**env, "RELAUNCH_VERTEX_API_ENDPOINT": vertex.url, "RELAUNCH_HOME": tmp})
        os.environ["RELAUNCH_PIPELINES_DIR"] = str(ROOT / "pipelines")

        from relaunch import bootstrap
        from relaunch.adapters.gcp.pubsub_bus import PubSubBus
        from relaunch.domain.commands import COMMANDS_TOPIC, RECONCILE_TOPIC
        from relaunch.settings import Settings

        app = bootstrap.App(Settings())
        bootstrap.use(app)
        store, bus = app.store, PubSubBus(PROJECT)
        functions = ["orchestrator", "reconcile"] + (["vertex_job"] if args.mode == "events" else [])
        urls = stack.enter_context(served(functions))
        topics = {"orchestrator": COMMANDS_TOPIC, "reconcile": RECONCILE_TOPIC}
        if args.mode == "events":
            from relaunch.domain.commands import VERTEX_JOBS_TOPIC

            topics["vertex_job"] = VERTEX_JOBS_TOPIC
        for name, topic in topics.items():
            bus.ensure_topic(topic)
            bus.ensure_push_subscription(f"bench-{name}", topic, urls[name])
        logging.disable(logging.INFO)  # the functions' own INFO lines would bury the figure
        stop = threading.Event()
        threading.Thread(target=ticker, args=(bus, args.tick, stop), daemon=True).start()
        stack.callback(stop.set)
        samples = [sample(app, store, (vertex, cloudbuild), bus, args.mode) for _ in range(args.n)]

    report(args.mode, samples)


def report(mode: str, samples: list[float]) -> None:
    samples = sorted(samples)
    p50 = statistics.median(samples)
    print(f"job end -> next stage ({mode}, n={len(samples)}): "
          f"min {samples[0]:.2f}s  p50 {p50:.2f}s  max {samples[-1]:.2f}s  (goal < {GOAL_S:.0f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
