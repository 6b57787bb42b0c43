"""What the gate report's charts show, from the gate's Decision and the evaluation's own files. Pure.

The Decision keeps each metric and each check in words; the charts need numbers: each metric's change against the
champion with its confidence interval, each floor and ceiling with the value that met it, and the paired outcomes
(both right, fixed, broken, both wrong). The interval is the gate's own (domain/gate.py paired_effect_interval, at
the level its paired test used), so the chart and the verdict never disagree. Only accuracy and error rate have one:
per-example outcomes (1 right, 0 wrong) determine those two metrics and nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from relaunch.domain.gate import paired_effect_interval
from relaunch.domain.model import Check, Decision
from relaunch.domain.spec import GatePolicy

MAX_LABELS = 50  # a confusion matrix wider than this is not a chart anyone reads on a phone
MAX_CELL = 10**12
DEFAULT_LEVEL = 0.90  # the gate's own at its default significance 0.05 (a two-sided 1 - 2 * alpha interval)


@dataclass(frozen=True)
class MetricDelta:
    """One metric's change against the champion, its interval when outcomes give one, and its regression limit."""

    name: str
    candidate: float
    champion: float | None
    delta: float | None
    low: float | None = None
    high: float | None = None
    limit: float | None = None  # the most the delta may move the wrong way (signed: negative for higher-is-better)


@dataclass(frozen=True)
class Guardrail:
    """A floor or a ceiling, the candidate's value against it, and whether it held."""

    metric: str
    kind: str  # floor | ceiling
    threshold: float
    value: float | None
    champion: float | None
    passed: bool


@dataclass(frozen=True)
class Paired:
    """The paired outcomes of candidate and champion on the same examples."""

    both_right: int
    fixed: int
    broken: int
    both_wrong: int

    @property
    def n(self) -> int:
        return self.both_right + self.fixed + self.broken + self.both_wrong


@dataclass(frozen=True)
class Confusion:
    """A confusion matrix the evaluation recorded: rows are true labels, columns predicted ones."""

    labels: tuple[str, ...]
    matrix: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class GateReport:
    """Everything the run page draws of a gate decision."""

    promote: bool
    checks: tuple[Check, ...]
    deltas: tuple[MetricDelta, ...]
    guardrails: tuple[Guardrail, ...]
    level: float
    paired: Paired | None = None
    confusion: Confusion | None = None


def gate_report(
    decision: Decision,
    policy: GatePolicy | None,
    outcomes: Mapping[str, object] | None = None,
    confusion: object = None,
) -> GateReport:
    """The report's numbers; `outcomes` and `confusion` come from the evaluation's files and are checked here."""
    level = 1 - 2 * policy.significance if policy is not None else DEFAULT_LEVEL
    paired = paired_outcomes(outcomes)
    return GateReport(
        promote=decision.promote,
        checks=tuple(decision.checks),
        deltas=tuple(_deltas(decision, policy, paired, level)),
        guardrails=tuple(_guardrails(decision, policy)),
        level=level,
        paired=paired,
        confusion=parse_confusion(confusion),
    )


def paired_outcomes(outcomes: Mapping[str, object] | None) -> Paired | None:
    """The 2x2 table of outcomes.json (None unless both lists are there, of 0s and 1s, of one length)."""
    if not outcomes:
        return None
    a, b = outcomes.get("candidate"), outcomes.get("champion")
    if not isinstance(a, list) or not isinstance(b, list) or not _bits(a) or not _bits(b) or len(a) != len(b) or not a:
        return None
    pairs = list(zip(a, b, strict=True))
    return Paired(
        both_right=pairs.count((1, 1)),
        fixed=pairs.count((1, 0)),
        broken=pairs.count((0, 1)),
        both_wrong=pairs.count((0, 0)),
    )


def parse_confusion(raw: object) -> Confusion | None:
    """A `confusion` object of metrics.json ({"labels": [...], "matrix": [[counts]]}), or None if it is not one."""
    if not isinstance(raw, Mapping):
        return None
    labels, matrix = raw.get("labels"), raw.get("matrix")
    if not isinstance(labels, list) or not isinstance(matrix, list) or not 0 < len(labels) <= MAX_LABELS:
        return None
    if len(matrix) != len(labels) or not all(isinstance(row, list) and len(row) == len(labels) for row in matrix):
        return None
    if not all(type(c) is int and 0 <= c <= MAX_CELL for row in matrix for c in row):
        return None
    return Confusion(labels=tuple(str(label)[:40] for label in labels), matrix=tuple(tuple(row) for row in matrix))


def _bits(values: list[object]) -> bool:
    return all(type(v) is int and v in (0, 1) for v in values)


def _deltas(decision: Decision, policy: GatePolicy | None, paired: Paired | None, level: float) -> list[MetricDelta]:
    champion = decision.champion or {}
    ceilings = policy.ceilings if policy is not None else {}
    limits = policy.max_regression if policy is not None else {}
    rows = []
    for name in sorted(decision.candidate):
        value, old = decision.candidate[name], champion.get(name)
        finite = math.isfinite(value) and (old is None or math.isfinite(old))
        delta = value - old if old is not None and finite else None
        low, high = _interval(name, paired, level) if delta is not None else (None, None)
        limit = limits.get(name)
        signed = None if limit is None else (limit if name in ceilings else -limit)
        rows.append(MetricDelta(name, value, old, delta, low, high, signed))
    return rows


def _interval(metric: str, paired: Paired | None, level: float) -> tuple[float | None, float | None]:
    """The paired interval of accuracy's change (error rate's is its mirror); none for any other metric."""
    if paired is None or metric not in ("accuracy", "error_rate"):
        return None, None
    low, high = paired_effect_interval(paired.fixed, paired.broken, paired.n, level)
    return (low, high) if metric == "accuracy" else (-high, -low)


def _guardrails(decision: Decision, policy: GatePolicy | None) -> list[Guardrail]:
    if policy is None:
        return []
    passed = {c.name: c.passed for c in decision.checks}
    champion = decision.champion or {}
    rails = []
    for kind, limits in (("floor", policy.floors), ("ceiling", policy.ceilings)):
        for metric, threshold in sorted(limits.items()):
            value = decision.candidate.get(metric)
            ok = passed.get(f"{kind}:{metric}", False)
            rails.append(Guardrail(metric, kind, threshold, value, champion.get(metric), ok))
    return rails


def finite_numbers(values: Sequence[float | None]) -> list[float]:
    """The finite numbers among `values` (a chart's scale ignores missing and infinite ones)."""
    return [v for v in values if v is not None and math.isfinite(v)]
