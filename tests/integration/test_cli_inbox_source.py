"""`relaunch inbox --source S` finds S's deliveries (and dead letters) however many newer rows of other sources the
store holds: the store filters by source, the command does not filter a window of the newest rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relaunch.bootstrap import App
from relaunch.cli import main
from relaunch.domain.model import Delivery
from relaunch.settings import Settings

NEWER = 1001  # one more than the window the command used to fetch and filter


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RELAUNCH_HOME", str(tmp_path))
    return tmp_path


def listed(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, object]]:
    assert main(["inbox", *argv, "--json"]) == 0
    rows: list[dict[str, object]] = json.loads(capsys.readouterr().out)
    return rows


def test_an_old_delivery_of_a_source_is_listed_behind_many_newer_ones(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """1,001 GitHub deliveries after one W&B delivery: `inbox --source wandb` listed nothing."""
    store = App(Settings(home=home)).store
    store.record_delivery(Delivery(key="wandb:old", source="wandb", received_at=1.0), [])
    for i in range(NEWER):
        store.record_delivery(Delivery(key=f"github:{i}", source="github", received_at=10.0 + i), [])

    assert [row["key"] for row in listed(capsys, "--source", "wandb")] == ["wandb:old"]
    newest = [row["key"] for row in listed(capsys, "--source", "github", "--limit", "2")]
    assert newest == [f"github:{NEWER - 1}", f"github:{NEWER - 2}"]
    assert [row["key"] for row in listed(capsys, "--limit", "1")] == [f"github:{NEWER - 1}"]


def test_an_old_dead_letter_of_a_source_is_listed_behind_many_newer_ones(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = App(Settings(home=home)).store
    store.dead_letter("drift", "unknown schema", "{}")
    for i in range(NEWER):
        store.dead_letter("relaunch-commands", f"refused {i}", "{}")

    [old] = listed(capsys, "--dead", "--source", "drift")
    assert (old["source"], old["reason"]) == ("drift", "unknown schema")
    newest = [row["reason"] for row in listed(capsys, "--dead", "--source", "relaunch-commands", "--limit", "2")]
    assert newest == [f"refused {NEWER - 1}", f"refused {NEWER - 2}"]
