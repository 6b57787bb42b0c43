"""`relaunch runs` prints one page (newest first) and says how to read the next; `--before RUN` reads it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from relaunch.bootstrap import App
from relaunch.cli import main
from relaunch.domain.model import Delivery, PipelineRun, Trigger
from relaunch.settings import Settings


@pytest.fixture
def five_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Runs digits-0 .. digits-4, the newest last; their ids newest first."""
    monkeypatch.setenv("RELAUNCH_HOME", str(tmp_path))
    store = App(Settings(home=tmp_path)).store
    runs = [
        PipelineRun(
            id=f"digits-{i}",
            pipeline="digits",
            trigger=Trigger(kind="push", delivery_key="github:d", repo="acme/digits", sha=f"{i:040x}"),
            created_at=1000.0 + i,
            updated_at=1000.0 + i,
        )
        for i in range(5)
    ]
    store.record_delivery(Delivery(key="github:d", source="github", headers={}, body="{}"), runs)
    return [f"digits-{i}" for i in reversed(range(5))]


def listed(out: str) -> list[str]:
    return re.findall(r"^(digits-\d)\s", out, re.M)


def test_pages_follow_each_other_and_the_last_says_nothing_more(
    five_runs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "--limit", "2"]) == 0
    first = capsys.readouterr()
    assert listed(first.out) == five_runs[:2]
    assert "older runs: relaunch runs --limit 2 --before digits-3" in first.err

    assert main(["runs", "--limit", "2", "--before", "digits-3"]) == 0
    assert listed(capsys.readouterr().out) == five_runs[2:4]

    assert main(["runs", "--limit", "2", "--before", "digits-1", "--pipeline", "digits"]) == 0
    last = capsys.readouterr()
    assert listed(last.out) == ["digits-0"]
    assert "older runs" not in last.err


def test_json_is_the_page_alone(five_runs: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "--json", "--limit", "3", "--before", "digits-4"]) == 0
    out = capsys.readouterr().out
    assert [run["id"] for run in json.loads(out)] == five_runs[1:4]


def test_an_unknown_cursor_is_an_error_not_the_first_page(
    five_runs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "--before", "nope\x1b[2J"]) == 1
    err = capsys.readouterr().err
    assert "no run 'nope" in err and "\x1b" not in err


@pytest.mark.parametrize("limit", ["0", "-1", "1001", "x"])
def test_a_limit_outside_one_page_is_refused(
    five_runs: list[str], capsys: pytest.CaptureFixture[str], limit: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["runs", "--limit", limit])
    assert exit_.value.code == 2
    assert "--limit" in capsys.readouterr().err
