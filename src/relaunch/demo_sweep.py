"""`relaunch demo --sweep`: the demo pipeline with a small sweep on the embedded stack.

One push of the digits example starts a run whose training is a random search over C: a handful of trials, two at a
time, each a local agent job of a few seconds scored on its validation rows. The winner is evaluated against the
(empty) champion on the held-out split and promoted. The demo then prints the sweep's wall time and cost next to
the sum of its trials', which is what the run is charged.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml
from pydantic import SecretStr

from relaunch.bootstrap import embedded_stack
from relaunch.demo import DemoFailed, EmbeddedTarget, Narrator, demo_specs, make_repo, project_root
from relaunch.domain.cost import entry_cost
from relaunch.domain.model import RunState
from relaunch.service import ledger
from relaunch.settings import Settings
from relaunch.simulate import push_payload, send_github

SWEEP: dict[str, Any] = {
    "method": "random",
    "parameters": {"C": {"type": "float", "low": 0.001, "high": 10.0, "log": True}},
    "objective": {"metric": "val_accuracy", "direction": "maximize"},
    "max_trials": 4,
    "parallel_trials": 2,
}


@dataclass(frozen=True)
class SweepOutcome:
    """What the sweep demo measured, for the exit code, tests and the closing note."""

    run_id: str
    state: RunState
    trials: list[dict[str, Any]]
    wall_s: float
    sweep_s: float
    trials_s: float
    usd: float
    trials_usd: float


def run_sweep_demo(home: Path | None = None, out: TextIO = sys.stdout) -> int:
    """Run the sweep scenario and narrate it; 0 only if the winner was promoted and the costs add up."""
    try:
        sweep_scenario(home, out)
    except DemoFailed as exc:
        print(f"\ndemo FAILED: {exc}", file=out)
        return 1
    return 0


def sweep_scenario(home: Path | None = None, out: TextIO = sys.stdout) -> SweepOutcome:
    """Start the embedded stack, push the example with a sweep spec, follow the run; raise DemoFailed on a miss."""
    root = project_root()
    work = Path(tempfile.mkdtemp(prefix="relaunch-sweep-demo-"))
    specs = demo_specs(root / "pipelines", work / "pipelines", work / "digits")
    with_sweep(specs / "digits.yaml")
    settings = Settings(
        home=home or work / "home", pipelines_dir=specs, github_webhook_secret=SecretStr(secrets.token_hex(16))
    )
    stack = embedded_stack(settings)
    try:
        stack.start()
        target = EmbeddedTarget(stack)
        narrator = Narrator(target.app, out)
        narrator.say(target.describe())
        repo = make_repo(root / "examples" / "digits", work / "digits")
        payload = push_payload(repo, full_name="relaunch-demo/digits", before=None)
        started = time.monotonic()
        reply = send_github(target.webhook_url, "push", payload, target.webhook_secret)
        runs = (reply.json().get("runs") or []) if reply.status_code == 202 else []
        if len(runs) != 1:
            raise DemoFailed(f"webhook answered {reply.status_code}: {reply.text}")
        run = narrator.follow(runs[0])
        outcome = measure(target.app, run.id, run.state, time.monotonic() - started)
        narrator.say(summary(outcome))
        if run.state is not RunState.PROMOTED:
            raise DemoFailed(f"the sweep's run ended {run.state.value}: {run.reason}")
        return outcome
    finally:
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)


def with_sweep(spec_file: Path) -> None:
    """Give the demo pipeline's spec its sweep section."""
    spec = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
    spec["sweep"] = SWEEP
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")


def measure(app: Any, run_id: str, state: RunState, wall_s: float) -> SweepOutcome:
    """The run's trials (from its timeline) and its cost (from the ledger), side by side."""
    timeline = app.store.timeline(run_id)
    trials = [e.data for e in timeline if e.kind == "trial"]
    moves = {(e.data.get("from"), e.data.get("to")): e.at for e in timeline if e.kind == "state"}
    sweep_s = moves.get(("training", "evaluating"), 0.0) - moves.get(("building", "training"), 0.0)
    entry = ledger.of_run(app.store, run_id)
    if entry is None:
        raise DemoFailed(f"run {run_id} recorded no cost")
    train_usd = entry_cost(entry.model_copy(update={"evaluate_s": 0.0})).usd
    return SweepOutcome(
        run_id=run_id,
        state=state,
        trials=trials,
        wall_s=wall_s,
        sweep_s=max(0.0, sweep_s),
        trials_s=sum(float(t["seconds"]) for t in trials),
        usd=train_usd,
        trials_usd=sum(float(t["usd"]) for t in trials),
    )


def summary(o: SweepOutcome) -> str:
    """One line: trials, wall time, the training's cost and the sum of the trials'."""
    return (
        f"sweep: {len(o.trials)} trials in {o.sweep_s:.1f}s wall ({o.wall_s:.1f}s push to {o.state.value}), "
        f"{o.trials_s:.1f}s of trials in all; training cost ${o.usd:.6f}, sum of the trials' ${o.trials_usd:.6f}"
    )
