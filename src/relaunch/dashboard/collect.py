"""What the dashboard reads for a page, through the ports the composition root gives it (no adapter here).

Each reader is bounded: the runs list reads one window of the newest runs, a run page reads the run and its
timeline by id, the pipelines page one traffic and one health look per environment. A backend that cannot answer
(an endpoint that is down) costs its cell, never the page.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING

from relaunch.bootstrap.wandb_facts import wandb_facts
from relaunch.config_files import load_prices
from relaunch.dashboard.gate_report import gate_report
from relaunch.dashboard.html import RunView
from relaunch.dashboard.readmodel import Place, RunFilter, links
from relaunch.domain import cost
from relaunch.domain.effects import Effect
from relaunch.domain.environments import PromotionRecord
from relaunch.domain.model import PipelineRun, TimelineEntry
from relaunch.domain.ports import PromotionHistory
from relaunch.service import ledger

if TYPE_CHECKING:
    from relaunch.bootstrap import App

log = logging.getLogger(__name__)

RUNS_WINDOW = 500  # newest runs a filter looks through (the port lists by count only)
RUNS_SHOWN = 100
HISTORY_SHOWN = 20
HEALTH_WINDOW_S = 300.0
MAX_EVALUATION_BYTES = 20 * 1024 * 1024  # outcomes.json of a very large test set is not drawn


def runs(app: App, chosen: RunFilter) -> list[PipelineRun]:
    """The newest runs the filter lets through (a window wider than the page only for filters the store cannot
    apply: on Firestore each listed run is a document read, and a live stream lists again every few seconds)."""
    sifted = chosen.trigger or chosen.state or chosen.branch
    found = app.store.list_runs(pipeline=chosen.pipeline, limit=RUNS_WINDOW if sifted else RUNS_SHOWN)
    return [run for run in found if chosen.matches(run)][:RUNS_SHOWN]


def run_view(app: App, run: PipelineRun, timeline: list[TimelineEntry]) -> RunView:
    """Links, cost and the gate report of one run."""
    report, note = None, ""
    if run.decision is not None:
        spec = app.specs().get(run.pipeline)
        outcomes, confusion, note = _evaluation(app, run)
        report = gate_report(run.decision, spec.gate if spec else None, outcomes, confusion)
    facts = wandb_facts(app.artifact_root, run, app.store.get_effect(run.id, Effect.WANDB_SYNC))
    return RunView(links=links(run, timeline), cost=_cost(app, run), report=report, report_note=note, wandb=facts)


def _evaluation(app: App, run: PipelineRun) -> tuple[dict[str, object] | None, object, str]:
    """outcomes.json and metrics.json's `confusion` of the run's evaluation, or a note saying why not."""
    folder = app.blobs.join(app.artifact_root, "runs", run.id, "evaluation")
    try:
        outcomes = json.loads(_bounded(app.blobs.read_text(app.blobs.join(folder, "outcomes.json"))))
        metrics = json.loads(_bounded(app.blobs.read_text(app.blobs.join(folder, "metrics.json"))))
    except Exception as exc:  # gone by retention, never written, too large, not JSON: the checks still show
        return (
            None,
            None,
            f"the evaluation's files are not readable ({type(exc).__name__}): charts from the decision only",
        )
    outcomes = outcomes if isinstance(outcomes, dict) else None
    return outcomes, metrics.get("confusion") if isinstance(metrics, dict) else None, ""


def _bounded(text: str) -> str:
    if len(text) > MAX_EVALUATION_BYTES:
        raise ValueError("evaluation file too large to draw")
    return text


def _cost(app: App, run: PipelineRun) -> str:
    entry = ledger.of_run(app.store, run.id)
    if entry is None:
        return "recorded when the run ends" if not run.state.terminal else "not recorded"
    try:
        spend = cost.entry_cost(entry, load_prices(app.settings.price_file))
    except ValueError:
        spend = cost.entry_cost(entry)
    notes = f" ({'; '.join(spend.notes)})" if spend.notes else ""
    return f"${spend.usd:.4g}: {spend.job_seconds:.1f} s of jobs, {spend.gpu_hours:.3g} GPU-h{notes}"


def places(app: App) -> tuple[list[Place], dict[str, list[PromotionRecord]]]:
    """Every pipeline's environments (or its one endpoint), what each serves now, and its champion history."""
    store = app.store
    history = store if isinstance(store, PromotionHistory) else None
    found, records = [], {}
    for name, spec in sorted(app.specs().items()):
        pairs = [(e.name, e.endpoint) for e in spec.environments] or [(spec.endpoint, spec.endpoint)]
        records[name] = history.promotions(name, limit=HISTORY_SHOWN) if history else []
        for env, endpoint in pairs:
            latest = next((r for r in records[name] if r.environment == env), None)
            split, health = _serving(app, endpoint)
            found.append(Place(name, env, endpoint, split, latest, health))
    return found, records


def _serving(app: App, endpoint: str) -> tuple[dict[str, int], str]:
    try:
        split = app.endpoint.traffic(endpoint)
    except Exception as exc:  # the endpoint server is down, or the cloud refused: this cell says so
        return {}, f"traffic unknown ({type(exc).__name__})"
    main = max(split.items(), key=lambda item: item[1])[0] if split else None
    if main is None:
        return split, ""
    try:
        seen = app.endpoint.health(endpoint, main, time.time() - HEALTH_WINDOW_S)
    except Exception as exc:
        return split, f"health unknown ({type(exc).__name__})"
    if not seen.requests:
        return split, f"{main}: no requests in {HEALTH_WINDOW_S / 60:.0f} min"
    p95 = f", p95 {seen.p95_ms:.0f} ms" if seen.p95_ms is not None else ""
    return split, f"{main}: {seen.requests} requests, {seen.error_rate:.1%} errors{p95}"
