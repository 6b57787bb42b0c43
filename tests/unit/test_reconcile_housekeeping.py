"""Reconcile runs housekeeping after the runs, once per interval, and its trouble never fails the tick."""

from __future__ import annotations

import logging

import pytest

from relaunch.domain.retention import RetentionPolicy
from relaunch.service.gc import Housekeeping
from relaunch.service.reconcile import ReconcileService, Timeouts
from tests.unit.test_reconcile import Clocked


def test_a_tick_runs_housekeeping_once_per_interval_and_logs_what_it_did(caplog: pytest.LogCaptureFixture) -> None:
    w = Clocked()
    keeper = Housekeeping(w.store, RetentionPolicy(), clock=lambda: w.now)
    budgets: list[float] = []

    def keep_house(budget_s: float) -> str | None:
        budgets.append(budget_s)
        report = keeper.maybe_collect(3600, budget_s)
        return None if report is None else report.summary()

    reconciler = ReconcileService.over(
        w.orch, clock=lambda: w.now, timeouts=Timeouts(tick_budget_s=100), housekeeping=keep_house
    )
    with caplog.at_level(logging.INFO, logger="relaunch.service.reconcile"):
        first, second = reconciler.run(), reconciler.run()
    w.now += 3601
    third = reconciler.run()

    assert first.housekeeping is not None and first.housekeeping.startswith("deleted nothing")
    assert second.housekeeping is None and third.housekeeping is not None
    assert budgets == [100, 100, 100]
    assert any(r.getMessage().startswith("housekeeping: deleted") for r in caplog.records)


def test_failing_housekeeping_is_reported_and_the_tick_still_ends() -> None:
    w = Clocked()

    def broken(budget_s: float) -> str | None:
        raise OSError("disk went away")

    report = ReconcileService.over(w.orch, clock=lambda: w.now, housekeeping=broken).run()
    assert report.housekeeping == "failed: OSError: disk went away" and report.errors == []
