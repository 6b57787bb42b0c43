"""The eval gate: a pure function of values."""

from __future__ import annotations

import math

import pytest

from relaunch.domain.gate import decide, mcnemar_one_sided, report_markdown
from relaunch.domain.model import Scores
from relaunch.domain.spec import GatePolicy

POLICY = GatePolicy(floors={"accuracy": 0.9}, max_regression={"accuracy": 0.01}, ceilings={"log_loss": 0.5})


def s(acc: float, loss: float = 0.1, outcomes: list[int] | None = None) -> Scores:
    return Scores(metrics={"accuracy": acc, "log_loss": loss}, outcomes=outcomes)


def test_first_model_needs_only_the_absolute_limits() -> None:
    d = decide(s(0.95), None, POLICY)
    assert d.promote and any("no champion yet" in c.detail for c in d.checks)


def test_floor_and_ceiling_failures_name_the_metric_and_the_limit() -> None:
    d = decide(s(0.85, loss=0.7), None, POLICY)
    assert not d.promote
    assert d.reasons == ["accuracy 0.8500 < floor 0.9000", "log_loss 0.7000 > ceiling 0.5000"]


def test_regression_within_the_limit_passes_and_beyond_it_fails() -> None:
    assert decide(s(0.945), s(0.95), POLICY).promote
    d = decide(s(0.93), s(0.95), POLICY)
    assert not d.promote and d.reasons == ["accuracy 0.9300 vs champion 0.9500: regression 0.0200 exceeds limit 0.0100"]


def test_lower_is_better_metrics_regress_upwards() -> None:
    policy = GatePolicy(ceilings={"log_loss": 1.0}, max_regression={"log_loss": 0.05})
    assert not decide(s(0.9, loss=0.3), s(0.9, loss=0.2), policy).promote
    assert decide(s(0.9, loss=0.1), s(0.9, loss=0.2), policy).promote


def test_a_missing_metric_fails_closed() -> None:
    d = decide(Scores(metrics={"f1": 0.99}), None, POLICY)
    assert not d.promote and "accuracy missing from evaluation" in d.reasons


def test_paired_test_is_reported_and_can_be_required() -> None:
    champ = s(0.90, outcomes=[1] * 90 + [0] * 10)
    cand = s(0.99, outcomes=[1] * 99 + [0] * 1)  # fixes 9, breaks 0
    d = decide(cand, champ, POLICY)
    paired = next(c for c in d.checks if c.name == "paired")
    assert d.promote and "9 fixed, 0 broken" in paired.detail
    strict = POLICY.model_copy(update={"require_significant_improvement": True})
    assert decide(cand, champ, strict).promote
    same = s(0.90, outcomes=[1] * 90 + [0] * 10)
    assert not decide(same, champ, strict).promote


def test_mismatched_outcome_lengths_fail() -> None:
    d = decide(s(0.95, outcomes=[1, 1]), s(0.95, outcomes=[1]), POLICY)
    assert not d.promote and "differ in length" in d.reasons[0]


@pytest.mark.parametrize(("wins", "losses", "expected"), [(0, 0, 1.0), (5, 0, 1 / 32), (0, 5, 1.0), (3, 3, 21 / 32)])
def test_mcnemar_exact(wins: int, losses: int, expected: float) -> None:
    assert math.isclose(mcnemar_one_sided(wins, losses), expected)


def test_mcnemar_large_samples_use_a_close_approximation() -> None:
    assert mcnemar_one_sided(1100, 1000) < 0.02 < mcnemar_one_sided(1030, 1000)
    assert 0.0 <= mcnemar_one_sided(100000, 0) <= 1e-10


def test_report_lists_every_check_and_metric() -> None:
    d = decide(s(0.93), s(0.95), POLICY, champion_version="v3")
    md = report_markdown(d, pipeline="digits", candidate_label="abc1234")
    assert "❌ reject" in md and "champion `v3`" in md and "| accuracy | 0.9300 | 0.9500 |" in md
    assert md.count("| regression:accuracy | **fail** |") == 1


FLOORS_ONLY = GatePolicy(floors={"accuracy": 0.8})


def _paired(fixed: int, broken: int, n: int = 1000, right_both: int = 880) -> tuple[Scores, Scores]:
    """Candidate and champion outcomes with `fixed` and `broken` discordant examples out of `n`."""
    wrong_both = n - right_both - fixed - broken
    cand = [1] * right_both + [1] * fixed + [0] * broken + [0] * wrong_both
    champ = [1] * right_both + [0] * fixed + [1] * broken + [0] * wrong_both
    return s(sum(cand) / n, outcomes=cand), s(sum(champ) / n, outcomes=champ)


def test_a_candidate_significantly_worse_fails_whatever_its_floors_say() -> None:
    cand, champ = _paired(fixed=4, broken=64)
    d = decide(cand, champ, FLOORS_ONLY)
    paired = next(c for c in d.checks if c.name == "paired")
    assert not d.promote and not paired.passed
    assert all(c.passed for c in d.checks if c.name != "paired")
    assert "significantly worse" in paired.detail and "McNemar" in paired.detail
    assert "4 fixed, 64 broken" in paired.detail and "effect -0.0600" in paired.detail
    md = report_markdown(d, pipeline="digits", candidate_label="abc1234")
    assert md.count("| paired | **fail** |") == 1 and "p_worse=" in md and "CI [" in md


def test_a_drop_that_is_not_significant_still_passes() -> None:
    cand, champ = _paired(fixed=3, broken=5)
    d = decide(cand, champ, FLOORS_ONLY)
    assert d.promote and next(c for c in d.checks if c.name == "paired").passed


def test_the_margin_tolerates_a_drop_up_to_it_and_no_further() -> None:
    cand, champ = _paired(fixed=4, broken=64)  # a 0.06 drop
    assert decide(cand, champ, FLOORS_ONLY.model_copy(update={"non_inferiority_margin": 0.1})).promote
    d = decide(cand, champ, FLOORS_ONLY.model_copy(update={"non_inferiority_margin": 0.03}))
    paired = next(c for c in d.checks if c.name == "paired")
    assert not d.promote and "Tango" in paired.detail and "margin 0.03" in paired.detail


def test_require_significant_improvement_keeps_its_meaning_with_a_margin() -> None:
    cand, champ = _paired(fixed=3, broken=5)
    policy = FLOORS_ONLY.model_copy(update={"non_inferiority_margin": 0.05, "require_significant_improvement": True})
    assert not decide(cand, champ, policy).promote
    better, champ2 = _paired(fixed=40, broken=5)
    assert decide(better, champ2, policy).promote


def test_the_effect_interval_contains_the_effect_and_narrows_with_more_data() -> None:
    small = next(c for c in decide(*_paired(4, 8, n=100, right_both=80), FLOORS_ONLY).checks if c.name == "paired")
    large = next(c for c in decide(*_paired(40, 80), FLOORS_ONLY).checks if c.name == "paired")
    lo_s, hi_s = (float(x) for x in small.detail.split("CI [")[1].split("]")[0].split(", "))
    lo_l, hi_l = (float(x) for x in large.detail.split("CI [")[1].split("]")[0].split(", "))
    assert lo_s < -0.04 < hi_s and lo_l < -0.04 < hi_l and hi_l - lo_l < hi_s - lo_s


@pytest.mark.parametrize("margin", [-0.01, 1.0, float("nan"), float("inf")])
def test_a_bad_margin_is_refused_naming_the_field(margin: float) -> None:
    assert GatePolicy(non_inferiority_margin=0.02).non_inferiority_margin == 0.02
    with pytest.raises(ValueError, match="non_inferiority_margin"):
        GatePolicy(non_inferiority_margin=margin)
