"""`relaunch demo --environments` on the real embedded stack: two models climb staging -> production, the bake is
respected, and a rollback in production leaves staging serving the newer model."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from relaunch.bootstrap import App
from relaunch.cli import main
from relaunch.demo_environments import BAKE_S, environments_scenario
from relaunch.domain.model import PipelineRun, RunState
from relaunch.domain.ports import EnvironmentAliases, PromotionHistory
from relaunch.settings import Settings
from tests.integration.test_cli_output import table

pytestmark = pytest.mark.e2e


def climb_times(app: App, run: PipelineRun) -> dict[str, float]:
    """When the run entered and was promoted into each environment, from its timeline (`enter:ENV`, `serve:ENV`):
    staging's promotion is an environment entry, production's (the last) the run's move to promoted."""
    times: dict[str, float] = {}
    for entry in app.store.timeline(run.id):
        if entry.kind == "environment" and entry.message.startswith("entering "):
            times.setdefault(f"enter:{entry.message.split()[1]}", entry.at)
        elif entry.kind == "environment" and entry.message == f"{run.model_version} serves staging":
            times.setdefault("serve:staging", entry.at)
        elif entry.kind == "state" and entry.data.get("to") == "promoted":
            times.setdefault("serve:production", entry.at)
    return times


def test_two_models_climb_staging_then_production_and_production_rolls_back_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home, out = tmp_path / "home", io.StringIO()
    outcome = environments_scenario(home, out)
    printed = out.getvalue()
    app = App(Settings(home=home))

    # Each run climbed in order, and entered production only after min_bake_s in staging.
    for run, version in ((outcome.first, "v1"), (outcome.second, "v2")):
        assert run.state is RunState.PROMOTED and run.model_version == version
        t = climb_times(app, run)
        assert t["enter:staging"] <= t["serve:staging"] <= t["enter:production"] <= t["serve:production"], t
        assert t["serve:staging"] + BAKE_S <= t["enter:production"], t
    history = app.store
    assert isinstance(history, PromotionHistory)
    staging_v2 = next(r for r in history.promotions("digits", "staging") if r.version == "v2")
    production_v2 = next(r for r in history.promotions("digits", "production") if r.kind == "promoted")
    assert staging_v2.at + BAKE_S <= production_v2.at and production_v2.version == "v2"
    assert any(c.startswith("served staging 3 s") for c in production_v2.checks), production_v2.checks
    assert any(c.startswith("smoke: ") for c in production_v2.checks), production_v2.checks

    # Production required an approval: each run waited for it, and `relaunch approve` let it in.
    for run in (outcome.first, outcome.second):
        states = [e.data.get("to") for e in app.store.timeline(run.id) if e.kind == "state"]
        waited = states.index("awaiting_approval")
        assert states[waited:][:3] == ["awaiting_approval", "rolling_out", "promoted"], states
        assert f"relaunch approve: {run.id}: approved for {run.trigger.sha}; it enters production next" in printed
    approvers = [r.approved_by for r in history.promotions("digits", "production") if r.kind == "promoted"]
    assert len(approvers) == 2 and all(a.endswith(" (relaunch approve)") for a in approvers), approvers

    # Before the rollback both environments served v2; after it, production serves v1 and staging still v2.
    assert outcome.before == {"staging": ("v2", {"v2": 100}), "production": ("v2", {"v2": 100})}
    assert outcome.after == {"staging": ("v2", {"v2": 100}), "production": ("v1", {"v1": 100})}
    assert outcome.answers == {"staging": "v2", "production": "v1"}
    registry = app.registry
    assert isinstance(registry, EnvironmentAliases)
    assert [getattr(registry.alias("digits", env), "version", None) for env in ("staging", "production")] == [
        "v2",
        "v1",
    ]
    champion = app.registry.champion("digits")
    assert champion is not None and champion.version == "v1"

    # The history, as `relaunch history` lists it: production's three records, staging's two and no rollback.
    specs = home / "demo-pipelines"  # with a home given, the demo keeps its spec there and says how to use it
    assert f"RELAUNCH_HOME={home} RELAUNCH_PIPELINES_DIR={specs} relaunch history digits" in printed
    monkeypatch.setenv("RELAUNCH_HOME", str(home))
    monkeypatch.setenv("RELAUNCH_PIPELINES_DIR", str(specs))
    capsys.readouterr()
    assert main(["history", "digits", "--env", "production"]) == 0
    rows = table(capsys.readouterr().out)
    assert [(r["WHAT"], r["VERSION"], r["REPLACED"], r["RUN"]) for r in rows] == [
        ("rolled_back", "v1", "v2", outcome.second.id),
        ("promoted", "v2", "v1", outcome.second.id),
        ("promoted", "v1", "-", outcome.first.id),
    ]
    assert main(["history", "digits", "--env", "staging"]) == 0
    assert [(r["WHAT"], r["VERSION"]) for r in table(capsys.readouterr().out)] == [
        ("promoted", "v2"),
        ("promoted", "v1"),
    ]

    # The demo ends with `relaunch status digits`, exactly as the CLI prints it.
    assert main(["status", "digits"]) == 0
    status = capsys.readouterr().out
    assert status.strip() and status.strip() in printed
    rows = table(status)
    assert [(r["ENV"], r["SERVES"], r["HOW"]) for r in rows] == [
        ("staging", "v2", "promoted"),
        ("production", "v1", "rolled back from v2"),
    ]
    for row, run in zip(rows, (outcome.second, outcome.first), strict=True):  # the run and commit that made it
        assert (row["RUN"], row["COMMIT"]) == (run.id, (run.trigger.sha or "")[:12]), row
    assert "rolled back production to v1; staging still serves v2" in printed
    assert outcome.wall_s < 90


def test_the_environments_variant_runs_alone_on_the_local_profile(capsys: pytest.CaptureFixture[str]) -> None:
    for extra in (["--sweep"], ["--profile", "gcp-emulated"]):
        assert main(["demo", "--environments", *extra]) == 2
        assert capsys.readouterr().err == "relaunch demo: --environments runs alone, on the local profile\n"
