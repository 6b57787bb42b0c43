"""The gate report's charts as inline SVG, drawn on the server: no script, no library, nothing fetched.

Every label (metric names, class labels) comes from an evaluation a push brought, so each is escaped here; numbers
are formatted by this module. The charts scale to their container (viewBox, width 100%), so a phone shows them whole.
"""

from __future__ import annotations

import math

from markupsafe import Markup, escape

from relaunch.dashboard.gate_report import Confusion, GateReport, Paired, finite_numbers
from relaunch.textsafe import safe_line

WIDTH = 560
LABEL_W = 150
ROW_H = 30
PLOT_L, PLOT_R = LABEL_W + 10, WIDTH - 20
GOOD, BAD, INK, MUTED = "#1a7f37", "#cf222e", "#24292f", "#8c959f"


def delta_chart(report: GateReport) -> Markup:
    """Each metric's change against the champion, its interval as a whisker, its regression limit dashed."""
    rows = [d for d in report.deltas if d.delta is not None]
    if not rows:
        return Markup("")
    failed = {c.name.split(":", 1)[1] for c in report.checks if c.name.startswith("regression:") and not c.passed}
    reach = max(finite_numbers([abs(v) for d in rows for v in (d.delta, d.low, d.high, d.limit) if v is not None]))
    reach = max(reach * 1.15, 0.01)
    height = ROW_H * len(rows) + 40

    def x(value: float) -> float:
        return PLOT_L + (value + reach) / (2 * reach) * (PLOT_R - PLOT_L)

    title = f"Change against the champion, with the paired {report.level:.0%} interval"
    parts = [_open(height, title), _line(x(0), 10, x(0), height - 25, MUTED)]
    for i, d in enumerate(rows):
        y = 25 + i * ROW_H
        parts.append(_text(LABEL_W, y + 4, d.name, anchor="end"))
        if d.low is not None and d.high is not None:
            parts.append(_line(x(d.low), y, x(d.high), y, INK, width=2))
            parts += [_line(x(v), y - 6, x(v), y + 6, INK, width=2) for v in (d.low, d.high)]
        if d.limit is not None:
            parts.append(_line(x(d.limit), y - 10, x(d.limit), y + 10, BAD, dash=True))
        colour = BAD if d.name in failed else GOOD
        parts.append(f'<circle cx="{x(d.delta or 0.0):.1f}" cy="{y}" r="5" fill="{colour}"/>')
        parts.append(_text(PLOT_R, y - 8, f"{d.delta:+.4f}", anchor="end", size=10))
    parts.append(_text(x(-reach), height - 8, f"{-reach:+.3f}", size=10))
    parts.append(_text(x(reach), height - 8, f"{reach:+.3f}", anchor="end", size=10))
    return Markup("".join(parts) + "</svg>")


def guardrail_chart(report: GateReport) -> Markup:
    """Each floor and ceiling: the candidate's value as a bar, the limit as a line, the champion's as a ring."""
    rails = report.guardrails
    if not rails:
        return Markup("")
    scale = max([*finite_numbers([v for r in rails for v in (r.value, r.champion, r.threshold)]), 1e-9]) * 1.1
    height = ROW_H * len(rails) + 20

    def x(value: float) -> float:
        return PLOT_L + max(0.0, min(value, scale)) / scale * (PLOT_R - PLOT_L)

    parts = [_open(height, "Floors and ceilings")]
    for i, r in enumerate(rails):
        y = 20 + i * ROW_H
        parts.append(_text(LABEL_W, y + 4, f"{r.metric} {'≥' if r.kind == 'floor' else '≤'}", anchor="end"))
        if r.value is not None and math.isfinite(r.value):
            colour = GOOD if r.passed else BAD
            parts.append(
                f'<rect x="{PLOT_L}" y="{y - 7}" width="{x(r.value) - PLOT_L:.1f}" height="14" fill="{colour}"/>'
            )
            parts.append(_text(PLOT_R, y - 9, f"{r.value:.4f}", anchor="end", size=10))
        if r.champion is not None and math.isfinite(r.champion):
            parts.append(f'<circle cx="{x(r.champion):.1f}" cy="{y}" r="5" fill="none" stroke="{INK}"/>')
        parts.append(_line(x(r.threshold), y - 11, x(r.threshold), y + 11, INK, width=2))
    return Markup("".join(parts) + "</svg>")


def paired_chart(paired: Paired) -> Markup:
    """The paired outcomes as a 2x2 grid: candidate right or wrong against champion right or wrong."""
    matrix = ((paired.both_right, paired.fixed), (paired.broken, paired.both_wrong))
    title = f"Paired outcomes on {paired.n} examples ({paired.fixed} fixed, {paired.broken} broken)"
    return matrix_chart(("candidate right", "candidate wrong"), ("champion right", "champion wrong"), matrix, title)


def confusion_chart(confusion: Confusion) -> Markup:
    """The evaluation's confusion matrix: true labels down, predicted labels across."""
    return matrix_chart(confusion.labels, confusion.labels, confusion.matrix, "Confusion matrix (true ↓, predicted →)")


def matrix_chart(
    rows: tuple[str, ...], columns: tuple[str, ...], matrix: tuple[tuple[int, ...], ...], title: str
) -> Markup:
    """A grid of counts shaded by size, its row and column labels escaped."""
    cell = max(18, min(120, (WIDTH - LABEL_W - 20) // max(len(columns), 1)))  # two columns: room for labels
    height = 40 + cell * len(rows)
    top = max((c for row in matrix for c in row), default=0) or 1
    parts = [_open(height, title), _text(LABEL_W, 14, title, anchor="start", size=11)]
    for j, label in enumerate(columns):
        parts.append(_text(LABEL_W + 10 + j * cell + cell / 2, 32, label, anchor="middle", size=11))
    for i, label in enumerate(rows):
        y = 40 + i * cell
        parts.append(_text(LABEL_W, y + cell / 2 + 4, label, anchor="end", size=12))
        for j, count in enumerate(matrix[i]):
            shade = 0.08 + 0.8 * count / top
            x0 = LABEL_W + 10 + j * cell
            parts.append(
                f'<rect x="{x0}" y="{y}" width="{cell - 2}" height="{cell - 2}" fill="#0969da" '
                f'fill-opacity="{shade:.2f}"/>'
            )
            colour = "#fff" if shade > 0.5 else INK
            parts.append(_text(x0 + cell / 2 - 1, y + cell / 2 + 3, str(count), anchor="middle", size=13, fill=colour))
    return Markup("".join(parts) + "</svg>")


def _open(height: int, title: str) -> str:
    label = escape(safe_line(title))
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" aria-label="{label}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{label}</title>'
    )


def _line(x1: float, y1: float, x2: float, y2: float, colour: str, *, width: int = 1, dash: bool = False) -> str:
    pattern = ' stroke-dasharray="4 3"' if dash else ""
    return f'<line x1="{x1:.1f}" y1="{y1}" x2="{x2:.1f}" y2="{y2}" stroke="{colour}" stroke-width="{width}"{pattern}/>'


def _text(x: float, y: float, words: str, *, anchor: str = "start", size: int = 12, fill: str = INK) -> str:
    line = safe_line(words)
    shown = escape(line if len(line) <= 40 else line[:39] + "…")
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}">{shown}</text>'
