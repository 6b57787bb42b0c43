"""The eval gate: a pure function of values."""

from __future__ import annotations

import math

import pytest

from relaunch.pipelines.gate import decide, mcnemar_one_sided, report_markdown
from relaunch.pipelines.model import Scores
from relaunch.pipelines.spec import GatePolicy

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
