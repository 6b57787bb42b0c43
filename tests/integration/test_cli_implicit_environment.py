"""`relaunch status` and `relaunch history` for a pipeline without `environments:`: its endpoint is its environment."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from relaunch.adapters.local.sqlite_store import SqliteRunStore
from relaunch.cli import main
from relaunch.domain.environments import PromotionRecord
from relaunch.domain.model import Delivery, PipelineRun, RunState, Trigger
from relaunch.settings import Settings
from tests.integration.test_cli_output import table

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SqliteRunStore:
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    shutil.copy(ROOT / "pipelines" / "digits.yaml", pipelines / "digits.yaml")  # endpoint: digits, no environments
    monkeypatch.setenv("RELAUNCH_HOME", str(tmp_path))
    monkeypatch.setenv("RELAUNCH_PIPELINES_DIR", str(pipelines))
    return SqliteRunStore(Settings(home=tmp_path, pipelines_dir=pipelines).store_path)


def test_status_reads_a_model_promoted_before_records_were_kept_from_its_run(
    store: SqliteRunStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "digits"]) == 0  # nothing promoted yet: the one environment, with dashes
    [row] = table(capsys.readouterr().out)
    assert (row["ENV"], row["ENDPOINT"], row["SERVES"]) == ("digits", "digits", "-")
    trigger = Trigger(kind="push", delivery_key="d1", repo="relaunch-demo/digits", sha="c" * 40)
    run = PipelineRun(id="digits-1", pipeline="digits", trigger=trigger, state=RunState.PROMOTED, model_version="v3")
    store.record_delivery(Delivery(key="d1", source="github"), [run])
    store.close()
    assert main(["status", "digits"]) == 0
    [row] = table(capsys.readouterr().out)
    assert (row["SERVES"], row["RUN"], row["COMMIT"], row["HOW"]) == ("v3", "digits-1", "c" * 12, "promoted")


def test_history_and_status_of_the_implicit_environment_come_from_its_records(
    store: SqliteRunStore, capsys: pytest.CaptureFixture[str]
) -> None:
    for kind, version, replaced, at in [("promoted", "v1", None, 1e9), ("promoted", "v2", "v1", 2e9)]:
        store.record_promotion(
            PromotionRecord.model_validate(
                dict(
                    pipeline="digits",
                    environment="digits",
                    kind=kind,
                    version=version,
                    replaced=replaced,
                    run_id=f"digits-{version}",
                    sha="d" * 40,
                    approved_by="gate (no approval required)",
                    at=at,
                )
            )
        )
    store.close()
    assert main(["status", "digits"]) == 0
    [row] = table(capsys.readouterr().out)
    assert (row["ENV"], row["ENDPOINT"], row["SERVES"], row["RUN"]) == ("digits", "digits", "v2", "digits-v2")
    assert main(["history", "digits", "--env", "digits"]) == 0
    assert [(r["VERSION"], r["REPLACED"]) for r in table(capsys.readouterr().out)] == [("v2", "v1"), ("v1", "-")]
    assert main(["history", "digits", "--env", "staging"]) == 1
    said = capsys.readouterr().err
    known = "digits: no environments, its endpoint is the one"
    assert said == f"relaunch: digits has no environment 'staging' (environments: {known})\n"
