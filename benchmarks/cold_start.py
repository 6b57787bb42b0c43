"""Cold start: each function started under functions-framework as a deployment starts it, timed to its first 2xx.

Prints, for every function relaunch deploys (relaunch.functions.main.ENTRY_POINTS), the median time from process
start to the first 2xx answer to a cheap request it really answers (a signed ping, a command for an unknown run, a
minimal valid event, the dashboard's login page) over several starts, next to a bare hello-world function started the
same way, and the ratio. A second hello-world imports pydantic and answers with a model: what pydantic alone costs a
start, the floor of any function whose settings and records are pydantic models. Then the orchestrator's first real
event in the gcp profile (benchmarks/gcp_first_event.py: Firestore and Pub/Sub emulators, fake Cloud Build and
Vertex AI) against its target. Needs gcloud with the emulator components and Java for the gcp row (`--no-gcp` leaves
it out).
`--src PATH` (or RELAUNCH_SRC) chooses the `src` directory imported, here and by the function processes, so an older
checkout can be measured too; `--only a,b` times only those functions.
Run on demand: `python3 benchmarks/cold_start.py [-n 7]`.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import requests
from checkout import ROOT, SRC  # before relaunch: it chooses which relaunch is imported below

os.environ["RELAUNCH_SRC"] = str(SRC)  # benchmarks.gcp_first_event imports the same checkout
PYTHONPATH = os.environ.get("PYTHONPATH", "")  # SRC first: a --baseline goes before it

from relaunch.adapters.local.stack import free_port  # noqa: E402
from relaunch.functions.main import ENTRY_POINTS  # noqa: E402

sys.path.insert(1, str(ROOT))
from benchmarks.gcp_first_event import TARGET_S, first_event_samples  # noqa: E402
from tests.first_requests import PROBES, SECRET, Probe, command_request  # noqa: E402

BARE = textwrap.dedent(
    """
    import functions_framework

    @functions_framework.http
    def hello(request):
        return "hello"
    """
)
# The same hello-world, answering with a pydantic model it validates: what importing pydantic (BaseModel and Field, as
# relaunch's models do) costs any function before it does anything of its own. Printed as a reference: every
# relaunch function imports pydantic before its first answer (its settings and its records are pydantic models).
BARE_PYDANTIC = textwrap.dedent(
    """
    import functions_framework
    from pydantic import BaseModel, Field

    class Hello(BaseModel):
        greeting: str = Field(default="hello", min_length=1)

    @functions_framework.http
    def hello(request):
        return Hello().model_dump_json()
    """
)


def time_to_first_2xx(target: str, source: Path, request: Probe, env: dict[str, str], log: Path | None = None) -> float:
    """Seconds from starting functions-framework on `target` to its first 2xx answer to `request`."""
    port = free_port()
    argv = [sys.executable, "-m", "functions_framework", "--target", target, "--source", str(source)]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    method, path, body, headers = request
    out = log.open("ab") if log else subprocess.DEVNULL
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=out, stderr=out, start_new_session=True)
    try:
        while time.perf_counter() - started < 60:
            try:
                reply = requests.request(
                    method, f"http://127.0.0.1:{port}{path}", data=body, headers=headers, timeout=10
                )
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


def child_env(tmp: Path, src: Path) -> dict[str, str]:
    """A function process's environment: its own home, the webhooks' secrets, and `src` to import relaunch from."""
    path = os.pathsep.join(p for p in (str(src), PYTHONPATH) if p)
    return {
        **os.environ,
        "PYTHONPATH": path,
        "RELAUNCH_HOME": str(tmp / f"home-{src.parent.name}-{abs(hash(src))}"),  # one store per checkout
        "RELAUNCH_GITHUB_WEBHOOK_SECRET": SECRET,
        "RELAUNCH_WANDB_WEBHOOK_TOKEN": SECRET,
        "RELAUNCH_PIPELINES_DIR": str(ROOT / "pipelines"),
    }


def summary(label: str, samples: list[float]) -> str:
    return (
        f"{label:28} median {statistics.median(samples) * 1000:7.1f} ms  (min {min(samples) * 1000:.1f}, "
        f"max {max(samples) * 1000:.1f}, n={len(samples)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=7, help="starts per function")
    parser.add_argument("--src", default=str(SRC), help="src directory to import relaunch from (or RELAUNCH_SRC)")
    parser.add_argument("--baseline", help="another src directory, timed interleaved with --src (A/B)")
    parser.add_argument("--only", help="comma-separated functions to time (default: every entry point)")
    parser.add_argument("--no-gcp", action="store_true", help="leave out the gcp first-event row")
    args = parser.parse_args()
    functions = args.only.split(",") if args.only else list(ENTRY_POINTS)
    sources = {"": SRC} if not args.baseline else {"base ": Path(args.baseline).resolve(), "new ": SRC}
    with tempfile.TemporaryDirectory() as tmp:
        bare, with_pydantic = Path(tmp) / "bare.py", Path(tmp) / "bare_pydantic.py"
        bare.write_text(BARE)
        with_pydantic.write_text(BARE_PYDANTIC)
        hello: Callable[[], Probe] = lambda: ("GET", "/", b"", {})  # noqa: E731
        cases: list[tuple[str, str, Path, Callable[[], Probe], Path]] = [
            ("bare hello-world", "hello", bare, hello, SRC),
            ("bare + a pydantic model", "hello", with_pydantic, hello, SRC),
        ]
        for name in functions:
            for tag, src in sources.items():
                cases.append((f"{tag}{name}", name, src / "relaunch" / "functions" / "main.py", PROBES[name], src))
        samples: dict[str, list[float]] = {label: [] for label, *_ in cases}
        for _ in range(args.n):  # rounds, each starting every case once: drift on a busy machine hits all alike
            for label, target, source, make, src in cases:
                samples[label].append(time_to_first_2xx(target, source, make(), child_env(Path(tmp), src)))
        base = statistics.median(samples["bare hello-world"])
        for label, series in samples.items():
            print(f"{summary(label, series)}  {statistics.median(series) / base:.2f}x bare")
        if args.no_gcp:
            return
        label = "orchestrator gcp 1st"
        source = SRC / "relaunch" / "functions" / "main.py"
        env = child_env(Path(tmp), SRC)
        gcp = first_event_samples(args.n, env, source, Path(tmp), time_to_first_2xx, command_request)
        verdict = "meets" if statistics.median(gcp) <= TARGET_S else "MISSES"
        ratio = statistics.median(gcp) / base
        print(f"{summary(label, gcp)}  {ratio:.2f}x bare; target <= {TARGET_S * 1000:.0f} ms: {verdict}")


if __name__ == "__main__":
    main()
