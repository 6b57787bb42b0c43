"""A signed push on the embedded profile is one write transaction: the inbox row, its run and the run's start_run
command commit together (the command goes into the bus file, attached to the store's inbox writer), in a bounded
number of SQLite statements. The statement trace of every connection the process opens is the evidence; the rows read
back from fresh connections show what a 2xx promises is committed."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from relaunch.adapters.local import sqlite as sqlite_plumbing
from relaunch.bootstrap import App
from relaunch.domain.model import Delivery, PipelineRun, Trigger
from relaunch.settings import Settings
from relaunch.simulate import github_headers
from relaunch.triggers.github import parse_github

SECRET = "s3cret"
PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"
MAX_STATEMENTS = 10  # BEGIN, one dedupe SELECT, inbox, run, its first entry, content, message, its id, delivery, COMMIT


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every statement run on any connection opened from now on, in order."""
    statements: list[str] = []
    real = sqlite_plumbing.connect

    def connect(path: Path) -> sqlite3.Connection:
        conn = real(path)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(sqlite_plumbing, "connect", connect)
    yield statements


def app_at(home: Path) -> App:
    return App(Settings(home=home, pipelines_dir=PIPELINES, github_webhook_secret=SecretStr(SECRET)))


def push(sha: str, delivery: str) -> tuple[dict[str, str], bytes]:
    payload = {
        "ref": "refs/heads/main",
        "before": "0" * 40,
        "after": sha,
        "created": False,
        "deleted": False,
        "forced": False,
        "repository": {"full_name": "relaunch-demo/digits"},
        "pusher": {"name": "octocat"},
        "head_commit": {"message": "train"},
        "commits": [{"added": [], "modified": ["train.py"], "removed": []}],
    }
    body = json.dumps(payload).encode()
    return github_headers("push", body, SECRET, delivery), body


def deliver(app: App, sha: str, delivery: str) -> tuple[int, dict[str, object]]:
    headers, body = push(sha, delivery)
    reply = app.ingest.github(parse_github(headers, body, secret=SECRET), headers, body)
    return reply.status, reply.body


def published(home: Path) -> list[dict[str, object]]:
    with sqlite3.connect(home / "bus.db") as conn:
        return [json.loads(row[0]) for row in conn.execute("SELECT data FROM bus_messages ORDER BY id")]


def runs(home: Path) -> list[str]:
    with sqlite3.connect(home / "relaunch.db") as conn:
        return [row[0] for row in conn.execute("SELECT id FROM runs ORDER BY rowid")]


def test_a_push_commits_inbox_run_and_start_command_in_one_transaction(tmp_path: Path, traced: list[str]) -> None:
    app = app_at(tmp_path)
    deliver(app, "a" * 40, "warm")  # opening files, creating schemas: once per process, not per delivery
    traced.clear()
    status, body = deliver(app, "b" * 40, "d-1")
    assert status == 202 and body["outcome"] == "accepted"
    writes = [s for s in traced if s.split()[0].upper() in ("BEGIN", "COMMIT", "ROLLBACK")]
    assert writes == ["BEGIN IMMEDIATE", "COMMIT"], f"one transaction per delivery, got {writes} in {traced}"
    assert len(traced) <= MAX_STATEMENTS, f"{len(traced)} statements for one delivery: {traced}"
    run_ids = body["runs"]
    assert isinstance(run_ids, list) and len(run_ids) == 1
    run_id = run_ids[0]
    assert run_id in runs(tmp_path)
    assert {"type": "start_run", "run_id": run_id} in published(tmp_path)


def test_the_start_command_is_published_once_and_only_for_runs_written(tmp_path: Path) -> None:
    app = app_at(tmp_path)
    _, first = deliver(app, "c" * 40, "d-1")
    assert deliver(app, "c" * 40, "d-1")[1]["outcome"] == "duplicate"  # a redelivery: nothing new
    assert deliver(app, "c" * 40, "d-2")[1]["outcome"] == "duplicate"  # the same commit again: nothing new
    starts = [m for m in published(tmp_path) if m["type"] == "start_run"]
    assert starts == [{"type": "start_run", "run_id": first["runs"][0]}]  # type: ignore[index]


def test_a_write_that_fails_publishes_nothing(tmp_path: Path) -> None:
    """The command shares the run's transaction: a delivery whose write fails leaves no command behind."""
    store = app_at(tmp_path).store
    trigger = Trigger(kind="push", delivery_key="k1", repo="relaunch-demo/digits", sha="d" * 40)
    run = PipelineRun(id="r1", pipeline="digits", trigger=trigger)
    assert store.record_delivery(Delivery(key="k1", source="github"), [run])
    other = run.model_copy(update={"content_key": None})  # the same run id again: the write must fail
    with pytest.raises(sqlite3.IntegrityError):
        store.record_delivery(Delivery(key="k2", source="github"), [other])
    assert [m["run_id"] for m in published(tmp_path)] == ["r1"]
    with sqlite3.connect(tmp_path / "relaunch.db") as conn:
        assert [row[0] for row in conn.execute("SELECT key FROM inbox")] == ["k1"]
