"""The demo scenario on the real embedded stack: functions-framework processes, SQLite, bus, agent, endpoint."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from relaunch.bootstrap import App
from relaunch.demo import project_root, scenario
from relaunch.domain.model import RunState
from relaunch.settings import Settings

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("home")
    out = io.StringIO()
    result = scenario(home, out)  # the suite's shared environments: a first build is the README walkthrough's test
    return result, App(Settings(home=home)), out.getvalue()


def test_good_commit_is_promoted_through_every_state(outcome) -> None:  # type: ignore[no-untyped-def]
    result, app, _ = outcome
    run = result.promoted
    assert run.state is RunState.PROMOTED and run.model_version == "v1"
    states = [e.data["to"] for e in app.store.timeline(run.id) if e.kind == "state" and e.data]
    assert states == ["received", "building", "training", "evaluating", "gated", "rolling_out", "promoted"]
    assert run.decision is not None and run.decision.promote and run.decision.candidate["accuracy"] >= 0.95
    assert run.stage_durations["train"] > 0 and run.stage_durations["evaluate"] > 0


def test_statuses_and_check_run_are_recorded_as_github_would_receive_them(outcome) -> None:  # type: ignore[no-untyped-def]
    result, app, _ = outcome
    entries = app.store.timeline(result.promoted.id)
    statuses = [(e.data["context"], e.data["state"]) for e in entries if e.kind == "github.status"]
    # Two handlers of one run can both post a `pending` before either records it (Notices: check, send, record); a
    # commit status is idempotent per context on GitHub, so a repeat is collapsed here. Order and outcome are not.
    statuses = [s for i, s in enumerate(statuses) if i == 0 or s != statuses[i - 1]]
    assert statuses == [
        ("relaunch/build", "pending"),
        ("relaunch/build", "success"),
        ("relaunch/train", "pending"),
        ("relaunch/train", "success"),
        ("relaunch/gate", "pending"),
        ("relaunch/gate", "success"),
        ("relaunch/deploy", "pending"),
        ("relaunch/deploy", "success"),
    ]
    assert all(
        len(e.data["description"]) <= 140 and e.data["sha"] == result.promoted.trigger.sha
        for e in entries
        if e.kind == "github.status"
    )
    check = next(e for e in entries if e.kind == "github.check_run")
    assert check.data["conclusion"] == "success" and "relaunch gate: ✅ promote" in check.data["output"]["summary"]


def test_worse_commit_is_rejected_with_its_reasons(outcome) -> None:  # type: ignore[no-untyped-def]
    result, app, _ = outcome
    run = result.rejected
    assert run.state is RunState.REJECTED and run.model_version is None
    assert run.decision is not None and run.decision.champion_version == "v1"
    failed = {c.name for c in run.decision.checks if not c.passed}
    assert {"floor:accuracy", "regression:accuracy"} <= failed
    assert "< floor 0.9000" in run.reason and "exceeds limit 0.0050" in run.reason
    check = next(e for e in app.store.timeline(run.id) if e.kind == "github.check_run")
    assert check.data["conclusion"] == "failure" and "**fail**" in check.data["output"]["summary"]


def test_endpoint_keeps_serving_the_champion(outcome) -> None:  # type: ignore[no-untyped-def]
    result, app, _ = outcome
    assert result.answer["model_version"] == "v1" and result.answer["deployedModelId"] == "v1"
    assert result.answer["predictions"] == result.truth
    assert app.registry.champion("digits").version == "v1"
    assert [v.version for v in app.registry.list_versions("digits")] == ["v1"]


def test_the_narration_is_readable(outcome) -> None:  # type: ignore[no-untyped-def]
    _, _, text = outcome
    assert "-> 202" in text and "▶ rolling_out -> promoted" in text and "gate rejected" in text
    assert "from model v1" in text and "Traceback" not in text


def test_nothing_is_left_running(outcome) -> None:  # type: ignore[no-untyped-def]
    _, app, _ = outcome
    assert not (Path(app.settings.home) / "stack.json").exists()


def test_runs_lists_both_runs_and_shows_a_timeline(
    outcome,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
    capsys: pytest.CaptureFixture[str],
) -> None:
    from relaunch.cli import main

    result, app, _ = outcome
    monkeypatch.setenv("RELAUNCH_HOME", str(app.settings.home))
    assert main(["runs"]) == 0
    listing = capsys.readouterr().out
    assert f"{result.promoted.id}" in listing and "promoted" in listing and "rejected" in listing
    assert main(["runs", "show", result.rejected.id]) == 0
    shown = capsys.readouterr().out
    assert "github.check_run" in shown and "gated -> rejected" in shown


def test_the_commits_environment_trains_and_an_unchanged_one_costs_nothing_on_the_next_push(outcome) -> None:  # type: ignore[no-untyped-def]
    import warnings

    import joblib
    import sklearn
    from sklearn.exceptions import InconsistentVersionWarning as VersionWarning

    from relaunch.settings import SKLEARN_SERVING_VERSION

    result, app, text = outcome
    (built,) = [e for e in app.store.timeline(result.promoted.id) if e.message.startswith("environment ")]
    (reused,) = [e for e in app.store.timeline(result.rejected.id) if e.message.startswith("environment ")]
    made = (": built in", "from requirements.txt") if "built" in built.message else (": reused", ": reused")
    assert made[0] in built.message and built.message.endswith(made[1])  # reused: built by another of the suite's
    assert reused.message == f"environment {built.data['environment']}: reused" and built.message in text
    # Trained with the example's pinned scikit-learn (unpickling names the version that pickled it), not relaunch's.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        joblib.load(Path(app.registry.champion("digits").artifact_uri.removeprefix("file://")) / "model.joblib")
    pickled_by = {w.message.original_sklearn_version for w in caught if isinstance(w.message, VersionWarning)}
    assert {v.rsplit(".", 1)[0] for v in pickled_by or {sklearn.__version__}} == {SKLEARN_SERVING_VERSION}


def test_the_champion_is_served_in_the_environment_it_was_trained_in(outcome) -> None:  # type: ignore[no-untyped-def]
    """The version's metadata names its build's environment, and the endpoint deployed it with that environment (a
    predictor worker of it answers: no scikit-learn other than the one that pickled the model unpickles it)."""
    import json

    result, app, _ = outcome
    (built,) = [e for e in app.store.timeline(result.promoted.id) if e.message.startswith("environment ")]
    assert app.registry.champion("digits").metadata["python_environment"] == built.data["environment"]
    state = json.loads(app.settings.endpoint_state_path.read_text())
    deployed = {d["version"]: d.get("python_environment") for d in state["endpoints"]["digits"]["deployed"]}
    assert deployed == {"v1": built.data["environment"]}


# Last in this module: gc deletes the runs' checkouts and outputs the tests above read (one demo serves both; a
# module is one xdist group, run in file order).


def relaunch(home: Path, *argv: str, **retain: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RELAUNCH_HOME": str(home), "RELAUNCH_PIPELINES_DIR": str(project_root() / "pipelines")}
    env.update({f"RELAUNCH_RETAIN_{name.upper()}": value for name, value in retain.items()})
    return subprocess.run(
        [sys.executable, "-m", "relaunch", *argv], capture_output=True, text=True, env=env, timeout=120
    )


def test_gc_lists_then_deletes_and_runs_and_replay_still_answer(outcome) -> None:  # type: ignore[no-untyped-def]
    home = outcome[1].settings.home
    runs = App(Settings(home=home)).store.list_runs()
    keys = [run.trigger.delivery_key for run in runs]
    assert len(runs) == 2 and all((home / "workspaces" / run.id).is_dir() for run in runs)
    policy = {"workspaces": "0", "body_days": "0"}

    dry = relaunch(home, "gc", "--dry-run", "--json", **policy)
    assert dry.returncode == 0, dry.stderr
    listed = json.loads(dry.stdout)
    assert {(r["kind"], r["name"]) for r in listed["removals"]} == {
        *(("workspace", run.id) for run in runs),
        *(("artifacts", run.id) for run in runs),
        *(("body", key) for key in keys),
    }
    assert listed["freed_bytes"] == sum(r["bytes"] for r in listed["removals"]) > 0 and listed["errors"] == []
    assert all((home / "workspaces" / run.id).is_dir() for run in runs)  # a dry run deletes nothing

    done = relaunch(home, "gc", **policy)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "DELETED" and "freed 6 items" in done.stdout
    assert re.search(rf"^workspace +{runs[0].id} +[0-9.]+ KiB +run ", done.stdout, re.M), done.stdout
    assert sorted(p.name for p in (home / "workspaces").iterdir() if not p.name.startswith(".")) == []
    assert not (home / "artifacts" / "runs" / runs[0].id).exists()
    assert relaunch(home, "gc", **policy).stdout.strip() == "nothing to collect"

    listing = relaunch(home, "runs")
    assert listing.returncode == 0 and all(run.id in listing.stdout for run in runs), listing.stderr
    replay = relaunch(home, "replay", keys[0])
    assert replay.returncode == 1 and "Traceback" not in replay.stderr, replay.stderr
    assert "its body was dropped on" in replay.stderr and "RELAUNCH_RETAIN_BODY_DAYS" in replay.stderr
    champion = App(Settings(home=home)).registry.champion("digits")
    assert champion is not None and Path(champion.artifact_uri).is_dir()  # the serving version is untouched
