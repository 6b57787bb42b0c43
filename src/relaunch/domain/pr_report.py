"""The pull request report: one comment per pipeline and pull request, edited in place on every push. Pure.

GitHub renders it without relaunch hosting anything: a markdown table (champion, candidate, delta and the paired
test's interval) and a Mermaid `xychart-beta` bar chart that GitHub draws itself. Its first line is a hidden marker,
so the notifier finds its own comment again by listing the pull request's comments (it also checks the author).
Every name in it comes from outside (metric names from the training code): names are escaped for markdown, table
cells and Mermaid, so none can close the chart's fence, start an HTML comment, split a cell or mention anyone.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from relaunch.domain.model import Decision, Notification

COMMENT_LIMIT = 65536  # GitHub: an issue comment's body, in characters
TABLE_LIMIT = 100  # metric rows shown; the check run has them all
CHART_LIMIT = 20  # bars: more would be unreadable
CHECKS_LIMIT = 50
NAME_LIMIT = 100
DETAIL_LIMIT = 500
_PIPELINE = re.compile(r"\A[a-z][a-z0-9-]{0,62}\Z")  # PipelineSpec.name: safe inside an HTML comment
_PUSHED = re.compile(r"<!-- relaunch:pushed ([0-9]{1,12}\.[0-9]{6}) -->")
_CHART_UNSAFE = re.compile(r"[^A-Za-z0-9 _.:/()+-]")
_MARKDOWN = re.compile(r"([\\`*_\[\]|#!~])")
_NO_MENTION = "@\u2060"  # a word joiner after @: GitHub links no @user or @org/team


@dataclass(frozen=True)
class MetricRow:
    """One metric of the report: both sides when there is a champion, and the paired interval of its delta."""

    name: str
    candidate: float | None
    champion: float | None
    interval: tuple[float, float] | None = None

    @property
    def delta(self) -> float | None:
        if self.candidate is None or self.champion is None:
            return None
        return self.candidate - self.champion


def marker(pipeline: str) -> str:
    """The hidden first line of a pipeline's report comment."""
    return f"<!-- relaunch:report pipeline={pipeline} -->"


def is_report(body: str | None, pipeline: str) -> bool:
    """Whether a comment's body is this pipeline's report: its marker alone on the first line."""
    if not isinstance(body, str) or not _PIPELINE.match(pipeline):
        return False
    return body.split("\n", 1)[0].rstrip("\r") == marker(pipeline)


def pushed_line(n: Notification) -> str:
    """The hidden second line: when the run began, so a late verdict of an older push leaves a newer report alone."""
    at = n.run_created_at
    return f"<!-- relaunch:pushed {at:.6f} -->" if at is not None and math.isfinite(at) else ""


def pushed_at(body: str | None) -> float | None:
    """When the run a report comment shows began (None: a comment written before the line existed, or edited)."""
    lines = body.split("\n", 2) if isinstance(body, str) else []
    found = _PUSHED.fullmatch(lines[1].rstrip("\r")) if len(lines) > 1 else None
    return float(found[1]) if found else None


def comment_body(n: Notification, run_link: str | None) -> str | None:
    """The comment for a gate verdict on a pull request, or None when the notification is not one."""
    made = n.decision
    if made is None or not n.pr_number or n.pr_number < 1 or n.stage != "gate" or n.state not in ("success", "failure"):
        return None
    if not _PIPELINE.match(n.pipeline):
        return None  # a name the marker could not hold safely: no comment rather than a broken one
    rows = metric_rows(made)
    head = _head(n, made, run_link)
    footer = f"<sub>This comment is updated in place on every push to the pull request; this is {_sha(n)}.</sub>"
    parts = [head, _table(rows), _chart(n.pipeline, rows, made), _checks(made), footer]
    body = "\n\n".join(parts) + "\n"
    if len(body) > COMMENT_LIMIT:  # a guard: the caps above keep a report well below GitHub's limit
        parts[3] = f"{len(made.checks)} gate checks: see the check run `relaunch/gate`."
        body = "\n\n".join(parts) + "\n"
    return body if len(body) <= COMMENT_LIMIT else body[: COMMENT_LIMIT - 2] + "…\n"


def metric_rows(decision: Decision) -> list[MetricRow]:
    """Every metric of either side, by name; accuracy and error rate carry the paired test's interval."""
    paired = next((c.interval for c in decision.checks if c.name == "paired" and c.interval), None)
    champion = decision.champion
    rows = []
    for name in sorted(set(decision.candidate) | set(champion or {})):
        interval = None
        if paired is not None and champion is not None:
            lo, hi = paired
            interval = {"accuracy": (lo, hi), "error_rate": (-hi, -lo)}.get(name)
        held = champion.get(name) if champion is not None else None
        rows.append(MetricRow(name, decision.candidate.get(name), held, interval))
    return rows


def key_deltas(decision: Decision, limit: int = 5) -> list[str]:
    """The metrics a summary names ("accuracy 0.9300 (+0.0200)"): those the gate checks first, then by name."""
    lines = []
    for row in _by_importance(decision)[:limit]:
        value = "—" if row.candidate is None else f"{row.candidate:.4f}"
        lines.append(f"{row.name} {value}" + ("" if row.delta is None else f" ({row.delta:+.4f})"))
    return lines


def _by_importance(decision: Decision) -> list[MetricRow]:
    rows = {row.name: row for row in metric_rows(decision)}
    gated = [c.name.split(":", 1)[1] for c in decision.checks if ":" in c.name]
    first = [name for name in dict.fromkeys(gated) if name in rows]
    return [rows[name] for name in first] + [row for name, row in rows.items() if name not in first]


def _head(n: Notification, made: Decision, run_link: str | None) -> str:
    verdict = "✅" if made.promote else "❌"
    outcome = "passed" if made.promote else "failed"
    title = f"{marker(n.pipeline)}\n{pushed_line(n)}\n## {verdict} relaunch `{n.pipeline}`: gate {outcome}"
    against = (
        f"champion `{_plain(made.champion_version)}`"
        if made.champion_version
        else "no champion (first model: absolute limits only)"
    )
    line = f"Head {_sha(n)} evaluated against {against}. A pull request is evaluated only, never promoted."
    if run_link:
        line += f" [run {_plain(n.run_id)}]({run_link})"
    return f"{title}\n\n{line}"


def _table(rows: list[MetricRow]) -> str:
    lines = ["| metric | champion | candidate | delta | interval |", "|---|---:|---:|---:|---|"]
    for row in rows[:TABLE_LIMIT]:
        interval = "—" if row.interval is None else f"[{row.interval[0]:+.4f}, {row.interval[1]:+.4f}]"
        delta = "—" if row.delta is None else f"{row.delta:+.4f}"
        lines.append(
            f"| {_code(row.name)} | {_number(row.champion)} | {_number(row.candidate)} | {delta} | {interval} |"
        )
    if len(rows) > TABLE_LIMIT:
        lines.append(f"\n… and {len(rows) - TABLE_LIMIT} more metrics: see the check run `relaunch/gate`.")
    if any(row.interval for row in rows):
        lines.append("\ninterval: the paired test's confidence interval for the difference, from per-example outcomes.")
    return "\n".join(lines)


def _chart(pipeline: str, rows: list[MetricRow], made: Decision) -> str:
    """A bar per metric: candidate minus champion, or the candidate's value for a first model."""
    shown = {row.name for row in _by_importance(made)[:CHART_LIMIT]}
    compared = made.champion is not None
    bars: list[tuple[str, float]] = []
    for row in rows:
        value = row.delta if compared else row.candidate
        if row.name in shown and value is not None and math.isfinite(value):
            bars.append((row.name, value))
    if not bars:
        return "No metric to chart."
    values = [value for _, value in bars]
    lo, hi = min(0.0, *values), max(0.0, *values)
    hi = hi if hi > lo else lo + 1.0
    axis = ", ".join(f'"{_chart_label(name)}"' for name, _ in bars)
    what = "candidate - champion" if compared else "candidate"
    return "\n".join(
        [
            "```mermaid",
            "xychart-beta",
            f'    title "{pipeline}: {what}"',
            f"    x-axis [{axis}]",
            f'    y-axis "{what}" {_chart_number(lo)} --> {_chart_number(hi)}',
            f"    bar [{', '.join(_chart_number(value) for value in values)}]",
            "```",
        ]
    )


def _checks(made: Decision) -> str:
    failed = sum(not c.passed for c in made.checks)
    ordered = sorted(made.checks, key=lambda c: c.passed)  # failures first
    lines = [
        f"<details><summary>Gate checks: {len(made.checks) - failed} passed, {failed} failed</summary>",
        "",
        "| check | result | detail |",
        "|---|---|---|",
    ]
    for check in ordered[:CHECKS_LIMIT]:
        result = "pass" if check.passed else "**fail**"
        lines.append(f"| {_code(check.name)} | {result} | {_plain(check.detail[:DETAIL_LIMIT])} |")
    if len(ordered) > CHECKS_LIMIT:
        lines.append(f"\n… and {len(ordered) - CHECKS_LIMIT} more: see the check run `relaunch/gate`.")
    return "\n".join([*lines, "", "</details>"])


def _sha(n: Notification) -> str:
    return f"`{_plain(n.sha or 'unknown')[:7]}`"


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _one_line(text: str) -> str:
    return " ".join(text.splitlines()).replace("@", _NO_MENTION)


def _plain(text: str) -> str:
    """Text from outside as literal markdown in a table cell: punctuation escaped, no HTML, one line."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _one_line(_MARKDOWN.sub(r"\\\1", escaped))


def _code(name: str) -> str:
    """A name as a code span in a table cell: no backtick to end it early, its pipes escaped (GFM tables)."""
    shown = name if len(name) <= NAME_LIMIT else name[: NAME_LIMIT - 1] + "…"
    return "`" + _one_line(shown.replace("`", "'")).replace("|", "\\|") + "`"


def _chart_number(value: float) -> str:
    """A plain decimal: Mermaid's grammar reads no exponent ("1e-05")."""
    shown = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if shown in ("", "-0") else shown


def _chart_label(name: str) -> str:
    """A Mermaid string: no quote, newline or bracket can end it, so nothing breaks out of the chart."""
    return _CHART_UNSAFE.sub("_", name)[:40] or "metric"
