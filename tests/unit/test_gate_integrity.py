"""The gate recomputes what per-example outcomes determine, and fails a metrics.json that disagrees with them."""

from __future__ import annotations

from relaunch.domain.gate import decide, report_markdown
from relaunch.domain.model import Scores
from relaunch.domain.spec import GatePolicy

POLICY = GatePolicy(floors={"accuracy": 0.9}, max_regression={"accuracy": 0.01})
HALF = [1, 0] * 50  # 50 of 100 right


def integrity(decision):  # type: ignore[no-untyped-def]
    return next(c for c in decision.checks if c.name == "integrity")


def test_a_claimed_accuracy_the_outcomes_contradict_fails_the_gate() -> None:
    d = decide(Scores(metrics={"accuracy": 0.99}, outcomes=HALF), None, POLICY)
    assert not d.promote
    check = integrity(d)
    assert not check.passed
    assert "candidate accuracy 0.9900 in metrics.json" in check.detail and "0.5000 (50/100)" in check.detail


def test_the_champion_is_checked_too() -> None:
    candidate = Scores(metrics={"accuracy": 0.95}, outcomes=[1] * 95 + [0] * 5)
    champion = Scores(metrics={"accuracy": 0.40}, outcomes=[1] * 90 + [0] * 10)  # made to look worse than it is
    check = integrity(decide(candidate, champion, POLICY))
    assert not check.passed and "champion accuracy 0.4000" in check.detail and "0.9000 (90/100)" in check.detail


def test_error_rate_is_recomputed_as_one_minus_accuracy() -> None:
    lying = Scores(metrics={"accuracy": 0.95, "error_rate": 0.0}, outcomes=[1] * 95 + [0] * 5)
    check = integrity(decide(lying, None, POLICY))
    assert not check.passed and "candidate error_rate 0.0000" in check.detail and "0.0500 (5/100)" in check.detail


def test_outcomes_that_are_not_n_examples_long_fail() -> None:
    d = decide(Scores(metrics={"accuracy": 1.0}, outcomes=[1, 1, 1]), None, POLICY, n_examples=360)
    assert not d.promote and "3 candidate outcomes for 360 examples" in integrity(d).detail


def test_outcomes_must_be_zero_or_one() -> None:
    d = decide(Scores(metrics={"accuracy": 1.0}, outcomes=[5, 5]), None, POLICY)
    assert not d.promote and "outcomes must be 0 or 1" in integrity(d).detail


def test_a_non_finite_metric_fails() -> None:
    d = decide(Scores(metrics={"accuracy": float("inf")}), None, POLICY)
    assert not d.promote and "accuracy is not a finite number" in integrity(d).detail


def test_consistent_numbers_pass_and_rounding_within_half_an_example_is_tolerated() -> None:
    outcomes = [1] * 2 + [0]  # 2/3 = 0.6666...: an evaluator rounding to 4 places is still consistent
    d = decide(Scores(metrics={"accuracy": 0.6667}, outcomes=outcomes), None, GatePolicy(), n_examples=3)
    assert d.promote and integrity(d).passed and "agree" in integrity(d).detail


def test_the_report_names_the_evaluator_commit() -> None:
    d = decide(Scores(metrics={"accuracy": 0.95}), None, POLICY)
    md = report_markdown(d, pipeline="digits", candidate_label="abc1234", evaluator="e" * 40)
    assert f"evaluator `{'e' * 40}`" in md
