"""`relaunch history` and `relaunch status` on a SQLite store with a two-environment pipeline."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from relaunch.adapters.local.sqlite_store import SqliteRunStore
from relaunch.cli import main
from relaunch.domain.environments import PromotionRecord
from relaunch.settings import Settings
from tests.integration.test_cli_output import table

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    spec = yaml.safe_load((ROOT / "pipelines" / "digits.yaml").read_text())
    del spec["endpoint"], spec["rollout"]
    spec["environments"] = [
        {"name": "staging", "endpoint": "digits-staging"},
        {"name": "production", "endpoint": "digits", "approval": "required", "min_bake_s": 60},
    ]
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    (pipelines / "digits.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.setenv("RELAUNCH_HOME", str(tmp_path))
    monkeypatch.setenv("RELAUNCH_PIPELINES_DIR", str(pipelines))
    store = SqliteRunStore(Settings(home=tmp_path, pipelines_dir=pipelines).store_path)
    for env, version, replaced, run, at, by in [
        ("staging", "v1", None, "digits-1", 1e9, ""),
        ("production", "v1", None, "digits-1", 1e9 + 90, "ada"),
        ("staging", "v2", "v1", "digits-2", 2e9, ""),
    ]:
        record = PromotionRecord(
            pipeline="digits", environment=env, version=version, replaced=replaced, run_id=run, sha="b" * 40, at=at
        )
        store.record_promotion(record.model_copy(update={"approved_by": by}))
    store.close()
    return tmp_path


def test_history_lists_promotions_newest_first_and_by_environment(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "digits"]) == 0
    rows = table(capsys.readouterr().out)
    assert [(r["ENV"], r["VERSION"], r["RUN"]) for r in rows] == [
        ("staging", "v2", "digits-2"),
        ("production", "v1", "digits-1"),
        ("staging", "v1", "digits-1"),
    ]
    assert rows[1]["APPROVED BY"] == "ada" and rows[0]["REPLACED"] == "v1"
    assert main(["history", "digits", "--env", "production"]) == 0
    assert [r["VERSION"] for r in table(capsys.readouterr().out)] == ["v1"]


def test_status_shows_what_each_environment_serves(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "digits"]) == 0
    rows = table(capsys.readouterr().out)
    assert [(r["ENV"], r["SERVES"], r["RUN"], r["COMMIT"]) for r in rows] == [
        ("staging", "v2", "digits-2", "b" * 12),
        ("production", "v1", "digits-1", "b" * 12),
    ]


def test_an_unknown_environment_or_pipeline_is_one_line(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "digits", "--env", "qa\x1b[31m"]) == 1
    err = capsys.readouterr().err
    assert re.fullmatch(r"relaunch: digits has no environment .* \(environments: staging, production\)\n", err)
    assert "\x1b" not in err
    assert main(["status", "nope"]) == 1
    assert "no pipeline 'nope' (pipelines: digits)" in capsys.readouterr().err
