"""Cold start: each function started under functions-framework as a deployment starts it, timed to its first 2xx.

Prints, per function, the median time from process start to the first 2xx answer over several starts, next to a bare
hello-world function started the same way, and the ratio; then the orchestrator's first real event in the gcp profile
(benchmarks/gcp_first_event.py: Firestore and Pub/Sub emulators, fake Cloud Build and Vertex AI) against its target.
Needs gcloud with the emulator components and Java for the gcp row.
Run on demand: `python3 benchmarks/cold_start.py [-n 7]`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from relaunch.adapters.local.stack import free_port  # noqa: E402
from relaunch.simulate import github_headers  # noqa: E402

sys.path.insert(0, str(ROOT))
from benchmarks.gcp_first_event import TARGET_S, first_event_samples  # noqa: E402

SECRET = "bench-secret"
BARE = textwrap.dedent(
    """
    import functions_framework

    @functions_framework.http
    def hello(request):
        return "hello"
    """
)


def ping_request() -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1, "repository": {"full_name": "a/b"}}).encode()
    return body, github_headers("ping", body, SECRET, str(uuid.uuid4()))


def command_request(run_id: str = "bench-unknown") -> tuple[bytes, dict[str, str]]:
    import base64

    data = base64.b64encode(json.dumps({"type": "start_run", "run_id": run_id}).encode()).decode()
    body = json.dumps({"message": {"data": data, "messageId": "1"}, "subscription": "projects/p/subscriptions/s"})
    headers = {
        "ce-id": str(uuid.uuid4()),
        "ce-specversion": "1.0",
        "ce-source": "//pubsub.googleapis.com/projects/p/topics/t",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "Content-Type": "application/json",
    }
    return body.encode(), headers


def time_to_first_2xx(
    target: str, source: Path, request: tuple[bytes, dict[str, str]], env: dict[str, str], log: Path | None = None
) -> float:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "functions_framework",
        "--target",
        target,
        "--source",
        str(source),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    out = log.open("ab") if log else subprocess.DEVNULL
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=out, stderr=out, start_new_session=True)
    try:
        while time.perf_counter() - started < 60:
            try:
                reply = requests.post(f"http://127.0.0.1:{port}/", data=request[0], headers=request[1], timeout=10)
                if 200 <= reply.status_code < 300:
                    return time.perf_counter() - started
                raise RuntimeError(f"{target} answered {reply.status_code}: {reply.text[:200]}")
            except requests.ConnectionError:
                time.sleep(0.005)
        raise TimeoutError(target)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
        if log:
            out.close()  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=7, help="starts per function")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "bare.py"
        bare.write_text(BARE)
        env = {
            **os.environ,
            "RELAUNCH_HOME": str(Path(tmp) / "home"),
            "RELAUNCH_GITHUB_WEBHOOK_SECRET": SECRET,
            "RELAUNCH_PIPELINES_DIR": str(ROOT / "pipelines"),
        }
        source = ROOT / "src" / "relaunch" / "functions" / "main.py"
        cases = [
            ("bare hello-world", "hello", bare, lambda: (b"", {})),
            ("github_webhook", "github_webhook", source, ping_request),
            ("orchestrator", "orchestrator", source, command_request),
        ]
        results = {}
        for label, target, src, make in cases:
            samples = [time_to_first_2xx(target, src, make(), env) for _ in range(args.n)]
            results[label] = statistics.median(samples)
            print(
                f"{label:20} median {results[label] * 1000:7.1f} ms  (min {min(samples) * 1000:.1f}, "
                f"max {max(samples) * 1000:.1f}, n={args.n})"
            )
        label = "orchestrator gcp 1st"
        samples = first_event_samples(args.n, env, source, Path(tmp), time_to_first_2xx, command_request)
        results[label] = statistics.median(samples)
        verdict = "meets" if results[label] <= TARGET_S else "MISSES"
        print(
            f"{label:20} median {results[label] * 1000:7.1f} ms  (min {min(samples) * 1000:.1f}, "
            f"max {max(samples) * 1000:.1f}, n={args.n})  target <= {TARGET_S * 1000:.0f} ms: {verdict}"
        )
        base = results["bare hello-world"]
        for label in ("github_webhook", "orchestrator", "orchestrator gcp 1st"):
            print(f"{label:20} ratio to bare: {results[label] / base:.2f}x")


if __name__ == "__main__":
    main()
