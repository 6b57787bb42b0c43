"""The CLI's views as rich renderables: runs, one run, the inbox, dead letters, the cost summary, gc's removals and
the environments' history and status. Pure.

Data in, renderables out; relaunch.cli.terminal decides where they go and whether colour is on. Every outside value
(ids, refs, names, reasons, log lines) becomes a `Text` built from `safe_line`, never a markup string, so neither
terminal escapes nor rich markup (`[red]`) nor emoji codes in an event can steer what the terminal shows. Tables size
their columns to their content and fold a value that does not fit a narrow terminal instead of cutting it; without
borders, a piped table is columns separated by two or more spaces (`awk -F '  +'` reads it).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from relaunch.domain.cost import CostSummary, LedgerEntry, Spend
from relaunch.domain.model import DeadLetter, Delivery, PipelineRun, TimelineEntry
from relaunch.domain.reporting import state_label
from relaunch.textsafe import safe_line

if TYPE_CHECKING:
    from relaunch.domain.environments import PromotionRecord
    from relaunch.domain.retention import Removal

# By value, so a state this module does not know (a newer one) still renders, unstyled.
STATE_STYLES: dict[str, str] = {
    "promoted": "green",
    "evaluated": "cyan",
    "rejected": "red",
    "failed": "red",
    "rolled_back": "yellow",
    "superseded": "dim",
    "awaiting_approval": "magenta",
}
ACTIVE_STYLE = "blue"
MISSING = "-"
COST_COLUMNS = ("RUNS", "TRAINED", "SUPERSEDED", "SKIPPED", "JOB TIME", "GPU TIME", "COST", "SAVED GPU", "SAVED COST")


def text(value: object, style: str = "") -> Text:
    """Outside text as an inert cell: controls escaped, markup and emoji codes kept as the characters they are."""
    return Text(safe_line(value), style=style)


def state_text(state: str, *, terminal: bool = True, label: str | None = None) -> Text:
    """A run state (or its `label`), coloured by what the state means for the model."""
    return text(label or state, STATE_STYLES.get(state, "" if terminal else ACTIVE_STYLE))


def run_state(run: PipelineRun) -> Text:
    """A run's state as a user reads it: an evaluated run has its gate verdict beside it."""
    return state_text(run.state.value, terminal=run.state.terminal, label=state_label(run))


def human_usd(usd: float) -> str:
    """Dollars with two significant digits below a dollar ($0.00033, $0.042), cents above ($12.34): never a 0.00."""
    if usd <= 0:
        return "$0"
    if usd >= 1:
        return f"${usd:,.2f}"
    return f"${usd:.{max(2, 1 - math.floor(math.log10(usd)))}f}"


def human_seconds(seconds: float, prefix: str = "") -> str:
    """A duration in the unit that fits it: 5.5 s, 42 s, 3.5 min, 1.2 h (`prefix` names what: 42 GPU-s), or 0."""
    if seconds <= 0:
        return "0"
    if seconds < 0.1:
        return f"<0.1 {prefix}s"
    if seconds < 60:
        return f"{seconds:.{1 if seconds < 10 else 0}f} {prefix}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} {prefix}min"
    return f"{seconds / 3600:.1f} {prefix}h"


def human_gpu(gpu_hours: float) -> str:
    """GPU time in the unit that fits it: 42 GPU-s, 3.5 GPU-min, 1.2 GPU-h, or 0 (a CPU-only job)."""
    return human_seconds(gpu_hours * 3600, "GPU-")


def model_of(run: PipelineRun) -> str | None:
    """The version a run registered: promoted, or rolled back (then only its rollout remembers it)."""
    return run.model_version or (run.rollout.new_version if run.rollout else None)


def runs_table(runs: Iterable[PipelineRun], costs: Mapping[str, Spend]) -> Table:
    """`relaunch runs`: one line per run, its cost once it ended."""
    table = _table("RUN", "PIPELINE", "STATE", "TRIGGER", "COMMIT", "MODEL", "COST", "CREATED")
    for run in runs:
        spend = costs.get(run.id)
        table.add_row(
            text(run.id),
            text(run.pipeline),
            run_state(run),
            text(run.trigger.kind),
            text((run.trigger.sha or MISSING)[:7]),
            text(model_of(run) or MISSING),
            text(_cost_cell(spend)),
            text(_when(run.created_at)),
        )
    return table


def run_detail(
    run: PipelineRun,
    timeline: Sequence[TimelineEntry],
    entry: LedgerEntry | None,
    spend: Spend | None,
    more: Sequence[tuple[str, str]] = (),
) -> Group:
    """`relaunch runs show`: what the run is, in one place each (`more`: further facts, e.g. its W&B runs), then its
    timeline with any job log's tail."""
    head = Text.assemble(text(run.id, "bold"), "  ", run_state(run))
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column(overflow="fold")
    facts.add_row("pipeline", text(run.pipeline))
    if run.reason and run.reason != run.state.value:
        facts.add_row("reason", text(run.reason))
    facts.add_row("trigger", _trigger(run))
    if model_of(run):
        facts.add_row("model", text(model_of(run)))
    facts.add_row("cost", text(_cost_line(run, entry, spend)))
    for name, value in more:
        facts.add_row(text(name), text(value))
    return Group(head, facts, Text("timeline", style="bold"), _timeline(timeline))


def deliveries_table(rows: Iterable[Delivery]) -> Table:
    """`relaunch inbox`: each delivery, what it did and which runs it started, nothing cut."""
    table = _table("RECEIVED", "SOURCE", "KEY", "OUTCOME", "RUNS")
    for row in rows:
        runs = " ".join(row.run_ids) or MISSING
        table.add_row(text(_when(row.received_at)), text(row.source), text(row.key), text(row.outcome), text(runs))
    return table


def dead_letters_table(rows: Iterable[DeadLetter]) -> Table:
    """`relaunch inbox --dead`: each dead letter with its whole reason."""
    table = _table("AT", "ID", "SOURCE", "REASON")
    for row in rows:
        table.add_row(text(_when(row.at)), text(row.id), text(row.source), text(row.reason))
    return table


def cost_view(summary: CostSummary) -> Group:
    """`relaunch cost`: spend and savings per pipeline, per trigger kind and in total, then the notes."""
    table = _table("GROUP", *COST_COLUMNS)
    for column in table.columns[1:]:
        column.justify = "right"
    groups = [("pipeline", summary.by_pipeline), ("trigger", summary.by_trigger), ("", {"total": summary.total})]
    for label, rows in groups:
        for name, r in sorted(rows.items()):
            counts = (r.runs, r.trained, r.superseded, r.skipped)
            table.add_row(
                text(f"{label} {name}".strip(), "bold" if not label else ""),
                *(text(n) for n in counts),
                text(human_seconds(r.job_seconds)),
                text(human_gpu(r.gpu_hours)),
                text(human_usd(r.usd)),
                text(human_gpu(r.gpu_hours_saved)),
                text(human_usd(r.usd_saved)),
            )
    notes = [text(f"note: {note}", "yellow") for note in summary.notes]
    return Group(table, *notes)


def removals_table(removals: Iterable[Removal], verb: str) -> Table:
    """`relaunch gc`: what goes (or would), its size and why; names whole, however long."""
    from relaunch.service.gc import human_bytes  # the gc command's alone

    table = _table(verb, "NAME", "SIZE", "WHY")
    table.columns[2].justify = "right"
    for r in removals:
        table.add_row(text(r.kind), text(r.name), text(human_bytes(r.size)), text(r.reason))
    return table


def history_table(records: Iterable[PromotionRecord]) -> Table:
    """`relaunch history`: promotion records as rows: when, environment, what happened, version (and what it
    replaced), run, commit."""
    table = _table("WHEN", "ENV", "WHAT", "VERSION", "REPLACED", "RUN", "COMMIT", "APPROVED BY", "CHECKS")
    for r in records:
        table.add_row(
            text(_when(r.at)),
            text(r.environment),
            state_text(r.kind),
            text(r.version),
            text(r.replaced or MISSING),
            text(r.run_id),
            text((r.sha or MISSING)[:12]),
            text(r.approved_by or MISSING),
            text("; ".join(r.checks) or MISSING),
        )
    return table


def status_table(places: list[tuple[str, str]], latest: list[PromotionRecord | None]) -> Table:
    """`relaunch status`: one row per (environment, endpoint), in climbing order: what serves it now (nothing yet:
    dashes)."""
    table = _table("ENV", "ENDPOINT", "SERVES", "SINCE", "RUN", "COMMIT", "HOW")
    for (name, endpoint), r in zip(places, latest, strict=True):
        if r is None:
            table.add_row(text(name), text(endpoint), *(text(MISSING) for _ in range(5)))
            continue
        how = "promoted" if r.kind == "promoted" else f"rolled back from {r.replaced}"
        table.add_row(
            text(name),
            text(endpoint),
            text(r.version),
            text(_when(r.at)),
            text(r.run_id),
            text((r.sha or MISSING)[:12]),
            state_text(r.kind, label=how),
        )
    return table


def _table(*headers: str) -> Table:
    table = Table(box=None, pad_edge=False, padding=(0, 1), show_edge=False, header_style="bold")
    for header in headers:
        table.add_column(header, overflow="fold")  # never no_wrap: rich crops such a cell where it does not fit
    return table


def _when(at: float) -> str:
    return dt.datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")


def _cost_cell(spend: Spend | None) -> str:
    if spend is None:
        return MISSING
    return human_usd(spend.usd) + ("?" if spend.notes else "")  # ?: a type the price table lacks


def _trigger(run: PipelineRun) -> Text:
    t = run.trigger
    parts = [t.kind, t.repo, f"#{t.pr_number}" if t.pr_number else None, t.ref, t.sha, t.artifact]
    line = " ".join(safe_line(p) for p in parts if p)
    return Text(line + (f" by {safe_line(t.actor)}" if t.actor else ""))


def _cost_line(run: PipelineRun, entry: LedgerEntry | None, spend: Spend | None) -> str:
    if entry is None or spend is None:
        return "not recorded" if run.state.terminal else "recorded when the run ends"
    stages = f"train {human_seconds(entry.train_s)}, evaluate {human_seconds(entry.evaluate_s)}"
    gpu = human_gpu(spend.gpu_hours) if spend.gpu_hours else "no GPU"
    line = f"{human_usd(spend.usd)}: {human_seconds(spend.job_seconds)} of jobs ({stages}), {gpu}"
    return "; ".join([line, *spend.notes])


def _timeline(entries: Sequence[TimelineEntry]) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    grid.add_column(overflow="fold")
    for entry in entries:
        at = dt.datetime.fromtimestamp(entry.at).strftime("%H:%M:%S.%f")[:-3]
        grid.add_row(Text("  " + at), text(entry.kind), text(entry.message))
        tail = entry.data.get("tail") if entry.kind == "log" else None
        for line in str(tail or "").splitlines():
            grid.add_row("", "", text("  " + line, "dim"))
    return grid
