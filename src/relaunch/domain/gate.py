"""The eval gate: a pure decision from candidate and champion scores, with a reason for every check."""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

from relaunch.domain.model import Check, Decision, Scores
from relaunch.domain.spec import GatePolicy

_NORMAL = NormalDist()


def decide(
    candidate: Scores,
    champion: Scores | None,
    policy: GatePolicy,
    champion_version: str | None = None,
    *,
    n_examples: int | None = None,
) -> Decision:
    """Apply floors, ceilings, maximum regression, the paired test and the integrity check; promote if all pass."""
    checks = [*_floor_checks(candidate, policy), *_ceiling_checks(candidate, policy)]
    if champion is None:
        checks.append(Check(name="champion", passed=True, detail="no champion yet: first model, absolute limits only"))
    else:
        checks.extend(_regression_checks(candidate, champion, policy))
        paired = _paired_check(candidate, champion, policy)
        if paired is not None:
            checks.append(paired)
    integrity = _integrity_check(candidate, champion, n_examples)
    if integrity is not None:
        checks.append(integrity)
    return Decision(
        promote=all(c.passed for c in checks),
        checks=checks,
        candidate=dict(candidate.metrics),
        champion=dict(champion.metrics) if champion else None,
        champion_version=champion_version,
    )


def _floor_checks(candidate: Scores, policy: GatePolicy) -> list[Check]:
    checks = []
    for metric, floor in sorted(policy.floors.items()):
        value = candidate.metrics.get(metric)
        if value is None:
            checks.append(Check(name=f"floor:{metric}", passed=False, detail=f"{metric} missing from evaluation"))
            continue
        ok = value >= floor
        sign = ">=" if ok else "<"
        checks.append(Check(name=f"floor:{metric}", passed=ok, detail=f"{metric} {value:.4f} {sign} floor {floor:.4f}"))
    return checks


def _ceiling_checks(candidate: Scores, policy: GatePolicy) -> list[Check]:
    checks = []
    for metric, ceiling in sorted(policy.ceilings.items()):
        value = candidate.metrics.get(metric)
        if value is None:
            checks.append(Check(name=f"ceiling:{metric}", passed=False, detail=f"{metric} missing from evaluation"))
            continue
        ok = value <= ceiling
        sign = "<=" if ok else ">"
        detail = f"{metric} {value:.4f} {sign} ceiling {ceiling:.4f}"
        checks.append(Check(name=f"ceiling:{metric}", passed=ok, detail=detail))
    return checks


def _regression_checks(candidate: Scores, champion: Scores, policy: GatePolicy) -> list[Check]:
    checks = []
    for metric, limit in sorted(policy.max_regression.items()):
        new, old = candidate.metrics.get(metric), champion.metrics.get(metric)
        if new is None or old is None:
            detail = f"{metric} missing for {'candidate' if new is None else 'champion'}"
            checks.append(Check(name=f"regression:{metric}", passed=False, detail=detail))
            continue
        lower_is_better = metric in policy.ceilings
        drop = (new - old) if lower_is_better else (old - new)
        ok = drop <= limit + 1e-12
        verb = "within" if ok else "exceeds"
        detail = f"{metric} {new:.4f} vs champion {old:.4f}: regression {max(drop, 0.0):.4f} {verb} limit {limit:.4f}"
        checks.append(Check(name=f"regression:{metric}", passed=ok, detail=detail))
    return checks


def _paired_check(candidate: Scores, champion: Scores, policy: GatePolicy) -> Check | None:
    a, b = candidate.outcomes, champion.outcomes
    if a is None or b is None:
        if policy.require_significant_improvement:
            return Check(name="paired", passed=False, detail="paired test required but per-example outcomes missing")
        return None
    if len(a) != len(b):
        return Check(name="paired", passed=False, detail=f"outcome lists differ in length ({len(a)} vs {len(b)})")
    if not a:
        return Check(name="paired", passed=False, detail="paired test has no examples")
    wins = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    losses = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    return _paired_verdict(wins, losses, len(a), policy)


def _paired_verdict(wins: int, losses: int, n: int, policy: GatePolicy) -> Check:
    """Fail a candidate significantly worse than the champion (beyond the margin), or not better if that is required."""
    alpha, margin = policy.significance, policy.non_inferiority_margin
    p_worse = worse_than_margin_p(losses, wins, n, margin)
    p_better = mcnemar_one_sided(wins, losses)
    lo, hi = paired_effect_interval(wins, losses, n, 1 - 2 * alpha)
    test = "exact McNemar test" if margin == 0 else f"Tango score test, margin {margin:g}"
    stats = (
        f"{test} on {n} examples: {wins} fixed, {losses} broken; effect {(wins - losses) / n:+.4f} accuracy, "
        f"{100 * (1 - 2 * alpha):g}% CI [{lo:.4f}, {hi:.4f}] (Tango score interval); "
        f"p_worse={p_worse:.4g}, p_better={p_better:.4g}, alpha={alpha:g}"
    )
    if p_worse < alpha:
        worse = "significantly worse than the champion" + (f" by more than {margin:g}: " if margin else ": ")
        return Check(name="paired", passed=False, detail=worse + stats, interval=(lo, hi))
    if policy.require_significant_improvement:
        ok = p_better < alpha
        verdict = "significant improvement: " if ok else "no significant improvement: "
        return Check(name="paired", passed=ok, detail=verdict + stats, interval=(lo, hi))
    return Check(name="paired", passed=True, detail="not significantly worse: " + stats, interval=(lo, hi))


def worse_than_margin_p(losses: int, wins: int, n: int, margin: float) -> float:
    """One-sided p-value of H0 "accuracy drop <= margin" against "drop > margin", from n paired outcomes.

    The drop is (losses - wins) / n: the champion-only rate minus the candidate-only rate. The burden of proof is on
    the evidence of harm, so a small sample does not fail a candidate (the floors and `max_regression` bound drops in
    absolute terms; `require_significant_improvement` puts the burden on the candidate instead). At margin 0 this is
    McNemar's exact test (a binomial on the discordant pairs, no large-sample approximation); above 0 the null has a
    nuisance parameter (the discordance rate) and no simple exact test, so it is Tango's (1998) score test, whose size
    stays close to nominal even with few discordant pairs.
    """
    if margin == 0:
        return mcnemar_one_sided(losses, wins)
    return 1.0 - _NORMAL.cdf(_tango_z(losses, wins, n, margin))


def paired_effect_interval(wins: int, losses: int, n: int, level: float) -> tuple[float, float]:
    """Two-sided `level` interval for the paired accuracy difference (wins - losses) / n: Tango's score interval.

    It inverts the same score test as `worse_than_margin_p`, so unlike a Wald interval it stays inside [-1, 1] and
    has width even when there are no discordant pairs.
    """
    z = _NORMAL.inv_cdf(0.5 + level / 2)
    # Tango's z falls as the hypothesised drop d rises; the interval is where it lies within [-z, z].
    low_drop = _bisect(lambda d: _tango_z(losses, wins, n, d) > z)
    high_drop = _bisect(lambda d: _tango_z(losses, wins, n, d) > -z)
    return -high_drop, -low_drop


def _tango_z(losses: int, wins: int, n: int, drop: float) -> float:
    """Tango's score statistic for H0: champion-only rate minus candidate-only rate == drop (-1 < drop < 1)."""
    # q is the candidate-only rate's maximum likelihood estimate under H0, the positive root of a*q^2 + b*q + c.
    a = 2.0 * n
    b = (2 * n - losses + wins) * drop - (losses + wins)
    c = -wins * drop * (1 - drop)
    q = (math.sqrt(max(b * b - 4 * a * c, 0.0)) - b) / (2 * a)
    variance = n * (2 * q + drop * (1 - drop))
    excess = losses - wins - n * drop
    if variance <= 0:
        return 0.0 if excess == 0 else math.copysign(math.inf, excess)
    return excess / math.sqrt(variance)


def _bisect(below: Callable[[float], bool], lo: float = -1.0 + 1e-12, hi: float = 1.0 - 1e-12) -> float:
    """The point in [lo, hi] where `below` turns from true to false (it must do so at most once)."""
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if below(mid) else (lo, mid)
    return (lo + hi) / 2


# Metrics a list of per-example outcomes (1 right, 0 wrong) determines: name -> (value, count shown) of (right, n).
_RECOMPUTABLE: dict[str, Callable[[int, int], tuple[float, int]]] = {
    "accuracy": lambda right, n: (right / n, right),
    "error_rate": lambda right, n: ((n - right) / n, n - right),
}


def _integrity_check(candidate: Scores, champion: Scores | None, n_examples: int | None) -> Check | None:
    """Whether metrics.json agrees with the outcomes it came with (None when there is nothing to compare)."""
    scored = [("candidate", candidate)] + ([("champion", champion)] if champion is not None else [])
    problems = [p for who, scores in scored for p in _integrity_problems(who, scores, n_examples)]
    if problems:
        return Check(name="integrity", passed=False, detail="; ".join(problems))
    counted = [f"{len(s.outcomes)} {who}" for who, s in scored if s.outcomes is not None]
    if not counted:
        return None
    return Check(name="integrity", passed=True, detail=f"metrics agree with the {' and '.join(counted)} outcomes")


def _integrity_problems(who: str, scores: Scores, n_examples: int | None) -> list[str]:
    problems = [f"{who} {m} is not a finite number" for m, v in sorted(scores.metrics.items()) if not math.isfinite(v)]
    outcomes = scores.outcomes
    if outcomes is None:
        return problems
    if any(o not in (0, 1) for o in outcomes):
        return [*problems, f"{who} outcomes must be 0 or 1"]
    if n_examples is not None and len(outcomes) != n_examples:
        return [*problems, f"{len(outcomes)} {who} outcomes for {n_examples} examples"]
    if not outcomes:
        return [*problems, f"{who} has an empty outcome list"]
    right, n = sum(outcomes), len(outcomes)
    for metric, formula in _RECOMPUTABLE.items():
        claimed = scores.metrics.get(metric)
        actual, count = formula(right, n)
        # Half an example apart is the most rounding can explain: anything more is a different count.
        if claimed is not None and math.isfinite(claimed) and abs(claimed - actual) >= 0.5 / n:
            problems.append(
                f"{who} {metric} {claimed:.4f} in metrics.json, but its outcomes give {actual:.4f} ({count}/{n})"
            )
    return problems


def mcnemar_one_sided(wins: int, losses: int) -> float:
    """Exact McNemar p-value that `wins` this large arises by chance: P(X >= wins), X ~ Bin(wins+losses, 1/2)."""
    n = wins + losses
    if n == 0:
        return 1.0
    if n > 2000:  # exact sums get slow; the continuity-corrected normal approximation is tight here
        z = (wins - 0.5 - n / 2) / math.sqrt(n / 4)
        return 0.5 * math.erfc(z / math.sqrt(2))
    tail = sum(math.comb(n, k) for k in range(wins, n + 1))
    return min(1.0, tail / (1 << n))


def report_markdown(decision: Decision, *, pipeline: str, candidate_label: str, evaluator: str | None = None) -> str:
    """The gate report as GitHub-flavoured markdown (for a check run's summary), naming the evaluator's commit."""
    verdict = "✅ promote" if decision.promote else "❌ reject"
    lines = [f"## relaunch gate: {verdict}", "", f"Pipeline `{pipeline}`, candidate `{candidate_label}`"]
    if decision.champion_version:
        lines[-1] += f", champion `{decision.champion_version}`"
    lines[-1] += f", evaluator `{evaluator or 'unknown'}`"
    lines += ["", "| check | result | detail |", "|---|---|---|"]
    lines += [f"| {c.name} | {'pass' if c.passed else '**fail**'} | {c.detail} |" for c in decision.checks]
    metrics = sorted(set(decision.candidate) | set(decision.champion or {}))
    lines += ["", "| metric | candidate | champion |", "|---|---|---|"]
    for m in metrics:
        old = (decision.champion or {}).get(m)
        lines.append(
            f"| {m} | {decision.candidate.get(m, float('nan')):.4f} | {'—' if old is None else f'{old:.4f}'} |"
        )
    return "\n".join(lines) + "\n"
