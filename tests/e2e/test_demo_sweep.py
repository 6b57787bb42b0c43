"""`relaunch demo --sweep` on the real embedded stack: trials as agent jobs, the winner evaluated and promoted."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from relaunch.bootstrap import App
from relaunch.demo_sweep import SWEEP, sweep_scenario
from relaunch.domain.model import RunState
from relaunch.settings import Settings

pytestmark = pytest.mark.e2e


def test_the_sweep_demo_promotes_the_best_trial_and_costs_the_sum_of_its_trials(tmp_path: Path) -> None:
    out = io.StringIO()
    outcome = sweep_scenario(tmp_path / "home", out)
    printed = out.getvalue()
    assert outcome.state is RunState.PROMOTED
    assert sorted(t["trial"] for t in outcome.trials) == list(range(SWEEP["max_trials"]))
    assert all(t["state"] == "succeeded" and t["seconds"] > 0 for t in outcome.trials)
    assert outcome.usd == pytest.approx(outcome.trials_usd, rel=1e-6) and outcome.usd > 0
    assert 0 < outcome.sweep_s < outcome.wall_s
    app = App(Settings(home=tmp_path / "home"))
    run = app.store.get_run(outcome.run_id)
    assert run is not None and run.model_version == "v1"
    best = max(outcome.trials, key=lambda t: (t["objective"], -t["trial"]))
    assert f"trial {best['trial']} won" in printed and f"trial {best['trial']} of 4 trials" in printed
    assert "sweep: 4 trials in" in printed and "sum of the trials'" in printed


def test_the_sweep_variant_is_not_silently_dropped_on_the_gcp_path(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--sweep --profile gcp-emulated` ran the plain GCP story, without a sweep and without a word."""
    from relaunch.cli import main
    from relaunch.emulated import demo_gcp

    monkeypatch.setattr(demo_gcp, "run_gcp_demo", lambda *a, **k: pytest.fail("ran the demo without its sweep"))
    assert main(["demo", "--sweep", "--profile", "gcp-emulated"]) == 2
    assert capsys.readouterr().err == "relaunch demo: --sweep runs on the local profile\n"
