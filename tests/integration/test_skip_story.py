"""A pipeline a push skips (no watched path changed) is recorded where a user looks: the inbox row names it with its
reason, and `relaunch runs show` of the id its "skipped" status carries tells the skip instead of "no run"."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from relaunch.adapters.local.notifier import TimelineNotifier
from relaunch.adapters.local.sqlite_store import SqliteRunStore
from relaunch.cli import main
from relaunch.domain.model import Notification
from relaunch.domain.spec import EvaluateSpec, JobSpec, PipelineSpec, SourceSpec
from relaunch.service.ingest import IngestService
from relaunch.service.ingest_skips import skipped_at_ingest
from relaunch.settings import Settings
from relaunch.simulate import github_headers
from relaunch.triggers.github import parse_github
from tests.fakes import FakeBus

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "github" / "push.2.json"  # adds README.md on master
SECRET = "s3cret"


def spec(name: str, **source: object) -> PipelineSpec:
    return PipelineSpec(
        name=name,
        source=SourceSpec(repo="Codertocat/Hello-World", branches=["master"], **source),  # type: ignore[arg-type]
        train=JobSpec(command=["python", "train.py"]),
        evaluate=EvaluateSpec(command=["python", "evaluate.py"]),
        endpoint=name,
    )


SPECS = {"model": spec("model", paths=["*.py"]), "docs": spec("docs")}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in [k for k in os.environ if k.startswith("RELAUNCH_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("RELAUNCH_HOME", str(tmp_path))
    return tmp_path


def push(store: SqliteRunStore) -> tuple[dict[str, object], str, str]:
    """Deliver the push; the reply, the delivery key and the id the skip's status was posted under."""
    bus = FakeBus()
    body = SAMPLE.read_bytes()
    headers = github_headers("push", body, SECRET, "d-1")
    reply = IngestService(store, bus, lambda: SPECS).github(parse_github(headers, body, secret=SECRET), headers, body)
    (skip,) = [data for _, data, _ in bus.messages if data["type"] == "report_skip"]
    note = Notification(  # what the orchestrator's report_skip posts, recorded as the embedded notifier records it
        run_id=skip["run_id"],
        pipeline="model",
        repo=skip["repo"],
        sha=skip["sha"],
        stage="gate",
        state="success",
        description=skip["description"],
    )
    TimelineNotifier(store).notify(note)
    return reply.body, "github:d-1", skip["run_id"]


def test_the_inbox_row_names_the_skipped_pipeline_beside_the_run_started(home: Path) -> None:
    store = SqliteRunStore(Settings().store_path)
    body, key, _ = push(store)
    row = store.get_delivery(key)
    store.close()
    assert body["outcome"] == "accepted" and len(body["runs"]) == 1  # type: ignore[arg-type]
    assert row is not None and row.outcome == "accepted; skipped: model: no watched path changed (*.py)"


def test_runs_show_of_the_skips_id_tells_the_skip(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = SqliteRunStore(Settings().store_path)
    _, key, skip_id = push(store)
    store.close()
    assert main(["runs", "show", skip_id]) == 0
    out = capsys.readouterr().out
    assert f"{skip_id}  model  skipped at ingest: no watched path changed" in out
    assert f"delivery {key}" in out and "relaunch/gate success: skipped: no watched path changed" in out


def test_an_id_no_delivery_derives_is_still_no_run(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = SqliteRunStore(Settings().store_path)
    push(store)
    assert skipped_at_ingest(store, "model-0000000000") is None and skipped_at_ingest(store, "nodash") is None
    store.close()
    assert main(["runs", "show", "model-0000000000"]) == 1
    assert "no run 'model-0000000000'" in capsys.readouterr().err
