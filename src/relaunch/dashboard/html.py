"""The dashboard's pages as server-rendered HTML: the layout, the runs list and one run. Pure.

Every value that came from outside (payload fields, refs, reasons, metric names, log lines) reaches the page only
through `t` (or `block` for logs): control and bidi characters and lone surrogates become visible escapes
(textsafe), then markupsafe escapes HTML. Templates are Markup; `fmt` escapes each argument that is not Markup.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from markupsafe import Markup, escape

from relaunch.dashboard import svg
from relaunch.dashboard.gate_report import GateReport
from relaunch.dashboard.readmodel import STATES, TRIGGERS, Link, RunFilter, branch_of, job_logs
from relaunch.domain.model import PipelineRun, RunState, TimelineEntry
from relaunch.domain.reporting import state_label
from relaunch.textsafe import safe_block, safe_line

NAV = (("runs", "/runs"), ("pipelines", "/pipelines"), ("inbox", "/inbox"))
NOTHING = Markup("")


def t(value: object) -> Markup:
    """Outside text as one inert line of HTML."""
    return escape(safe_line(value))


def block(value: object) -> Markup:
    """Outside text of several lines (a log tail) as inert HTML, newlines kept."""
    return escape(safe_block(value))


def fmt(template: str, *args: object) -> Markup:
    """`template` with each argument escaped (Markup arguments are taken as they are)."""
    return Markup(template).format(*(a if isinstance(a, Markup) else t(a) for a in args))


def when(at: float) -> str:
    """A time as UTC, the same on every viewer's screen."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))


def path_part(value: str) -> str:
    """A value as one URL path segment."""
    return quote(safe_line(value), safe="")


@dataclass(frozen=True)
class Viewer:
    """Who looks: whether they may act, and the form field that proves a form came from this dashboard."""

    can_act: bool = False
    csrf: str = ""
    flash: str = ""

    def form(self, action: str, label: str, button_id: str, extra: Markup = NOTHING, **fields: str) -> Markup:
        """A POST form with one button (after the `extra` inputs); empty for a viewer who may not act."""
        if not self.can_act:
            return Markup("")
        hidden = Markup("").join(fmt('<input type="hidden" name="{}" value="{}">', k, v) for k, v in fields.items())
        csrf = fmt('<input type="hidden" name="csrf" value="{}">', self.csrf)
        return fmt(
            '<form class="inline" method="post" action="{}">{}{}{}<button id="{}">{}</button></form>',
            action,
            hidden,
            csrf,
            extra,
            button_id,
            label,
        )


def layout(title: str, body: Markup, active: str, viewer: Viewer) -> str:
    """A whole page: viewport for phones, the served stylesheet and script, the navigation."""
    nav = Markup(" ").join(
        fmt('<a href="{}"{}>{}</a>', href, Markup(' class="active"') if name == active else Markup(""), name)
        for name, href in NAV
    )
    session = Markup('<a href="/logout">sign out</a>') if viewer.can_act else Markup('<a href="/login">sign in</a>')
    flash = fmt('<p class="flash" id="flash">{}</p>', viewer.flash) if viewer.flash else Markup("")
    return str(
        fmt(
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<title>{} · relaunch</title><link rel="stylesheet" href="/assets/dashboard.css">'
            '<script src="/assets/dashboard.js" defer></script></head><body><header><strong>relaunch</strong>'
            "<nav>{}</nav><span>{}</span></header><main>{}{}</main></body></html>",
            title,
            nav,
            session,
            flash,
            body,
        )
    )


def state_badge(run: PipelineRun, element_id: str = "") -> Markup:
    """The run's state, with `data-state` for styling and for tests."""
    ident = fmt(' id="{}"', element_id) if element_id else Markup("")
    return fmt('<span class="state"{} data-state="{}">{}</span>', ident, run.state.value, state_label(run))


def run_rows(runs: Sequence[PipelineRun]) -> Markup:
    """The runs list's rows (what the live stream replaces)."""
    if not runs:
        return Markup('<tr><td colspan="7" class="note">no runs match</td></tr>')
    return Markup("").join(
        fmt(
            '<tr data-run-id="{}" data-state="{}"><td><a href="/runs/{}">{}</a></td><td>{}</td><td>{}</td>'
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            r.id,
            r.state.value,
            path_part(r.id),
            r.id,
            r.pipeline,
            state_badge(r),
            r.trigger.kind,
            branch_of(r) or "-",
            (r.trigger.sha or "-")[:7],
            when(r.created_at),
        )
        for r in runs
    )


def runs_page(runs: Sequence[PipelineRun], chosen: RunFilter, pipelines: Sequence[str], viewer: Viewer) -> str:
    """The runs list with its filters; its rows follow the live stream for the same filter."""
    selects = Markup("").join(
        _select(name, values, getattr(chosen, name))
        for name, values in (("pipeline", tuple(pipelines)), ("trigger", TRIGGERS), ("state", STATES))
    )
    branch = fmt('<input name="branch" placeholder="branch" value="{}">', chosen.branch or "")
    live = "/live/runs" + (f"?{urlencode(chosen.query())}" if chosen.query() else "")
    body = fmt(
        '<h1>Runs</h1><form class="filters" method="get" action="/runs">{}{}<button>filter</button></form>'
        '<div class="scroll"><table><thead><tr><th>run</th><th>pipeline</th><th>state</th><th>trigger</th>'
        '<th>branch</th><th>commit</th><th>created</th></tr></thead><tbody id="runs" data-live="{}">{}</tbody>'
        "</table></div>",
        selects,
        branch,
        live,
        run_rows(runs),
    )
    return layout("runs", body, "runs", viewer)


def _select(name: str, values: Sequence[str], chosen: str | None) -> Markup:
    options = [fmt('<option value="">any {}</option>', name)]
    for value in values:
        selected = Markup(" selected") if value == chosen else Markup("")
        options.append(fmt('<option value="{}"{}>{}</option>', value, selected, value))
    return fmt('<select name="{}" aria-label="{}">{}</select>', name, name, Markup("").join(options))


@dataclass(frozen=True)
class RunView:
    """Everything the run page shows besides the run and its timeline, gathered by the web layer."""

    links: Sequence[Link] = ()
    cost: str = ""
    report: GateReport | None = None
    report_note: str = ""
    wandb: Sequence[tuple[str, str]] = ()  # what the jobs logged to W&B (bootstrap/wandb_facts), label and value


def run_body(run: PipelineRun, timeline: Sequence[TimelineEntry], view: RunView, viewer: Viewer) -> Markup:
    """The part of the run page the live stream replaces: state, facts, actions, gate report, timeline, logs."""
    trigger = run.trigger
    facts = [
        ("pipeline", run.pipeline),
        ("trigger", f"{trigger.kind} by {trigger.actor or 'unknown'}"),
        ("branch", branch_of(run) or "-"),
        ("commit", trigger.sha or "-"),
        ("model", run.model_version or "-"),
        ("reason", run.reason or "-"),
        ("cost", view.cost or "-"),
        *view.wandb,
    ]
    rows = Markup("").join(fmt("<tr><th>{}</th><td>{}</td></tr>", k, v) for k, v in facts)
    out = Markup("").join(
        fmt('<li><a href="{}" rel="noopener noreferrer">{}</a></li>', link.url, link.label) for link in view.links
    )
    return fmt(
        '<h1>Run {} {}</h1><div class="scroll"><table>{}</table></div><ul class="links">{}</ul>'
        '<div class="actions">{}</div>{}<h2>Timeline</h2><ol id="timeline">{}</ol>{}',
        run.id,
        state_badge(run, "run-state"),
        rows,
        out,
        _actions(run, view, viewer),
        gate_section(view.report, view.report_note),
        _timeline(timeline),
        _logs(timeline),
    )


def run_page(run: PipelineRun, timeline: Sequence[TimelineEntry], view: RunView, viewer: Viewer) -> str:
    """One run, following its live stream while the run goes."""
    live = f"/live/runs/{path_part(run.id)}"
    body = fmt(
        '<section id="run" data-run-id="{}" data-live="{}">{}</section>',
        run.id,
        live,
        run_body(run, timeline, view, viewer),
    )
    return layout(f"run {safe_line(run.id)}", body, "runs", viewer)


def _actions(run: PipelineRun, view: RunView, viewer: Viewer) -> Markup:
    if run.state is RunState.AWAITING_APPROVAL:
        reason = Markup('<input name="reason" placeholder="why (for reject)" maxlength="500" required>')
        approve = viewer.form("/actions/approve", "Approve", f"approve-{run.id}", run_id=run.id)
        return approve + viewer.form("/actions/reject", "Reject", f"reject-{run.id}", reason, run_id=run.id)
    if run.state is RunState.REJECTED and run.decision is not None and not run.trigger.evaluate_only:
        return viewer.form("/actions/promote", "Promote anyway (override)", f"promote-{run.id}", run_id=run.id)
    return Markup("")


def gate_section(report: GateReport | None, note: str) -> Markup:
    """The gate report: verdict, charts, and every check in words."""
    if report is None:
        return fmt('<p class="note">{}</p>', note) if note else Markup("")
    verdict = (
        Markup('<span class="pass">promote</span>') if report.promote else Markup('<span class="fail">reject</span>')
    )
    charts = [svg.delta_chart(report), svg.guardrail_chart(report)]
    if report.paired is not None:
        charts.append(svg.paired_chart(report.paired))
    if report.confusion is not None:
        charts.append(svg.confusion_chart(report.confusion))
    figures = Markup("").join(fmt("<figure>{}</figure>", c) for c in charts if c)
    checks = Markup("").join(
        fmt(
            '<tr><td>{}</td><td class="{}">{}</td><td>{}</td></tr>',
            c.name,
            "pass" if c.passed else "fail",
            "pass" if c.passed else "fail",
            c.detail,
        )
        for c in report.checks
    )
    return fmt(
        '<h2>Gate: {}</h2><div class="charts" id="gate-charts">{}</div>{}<div class="scroll"><table><thead><tr>'
        "<th>check</th><th>result</th><th>detail</th></tr></thead><tbody>{}</tbody></table></div>",
        verdict,
        figures,
        fmt('<p class="note">{}</p>', note) if note else Markup(""),
        checks,
    )


def _timeline(timeline: Sequence[TimelineEntry]) -> Markup:
    return Markup("").join(
        fmt('<li data-kind="{}"><time>{}</time> <strong>{}</strong> {}</li>', e.kind, when(e.at), e.kind, e.message)
        for e in timeline
    )


def _logs(timeline: Sequence[TimelineEntry]) -> Markup:
    logs = job_logs(timeline)
    if not logs:
        return Markup("")
    parts = Markup("").join(fmt("<h3>{}</h3><pre>{}</pre>", log.title, block(log.tail)) for log in logs)
    return fmt("<h2>Job logs</h2>{}", parts)
