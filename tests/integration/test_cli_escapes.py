"""The CLI's text output never hands a terminal the control characters an event carried."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relaunch.bootstrap import App
from relaunch.cli import main
from relaunch.domain.cost import skipped_entry
from relaunch.domain.model import Delivery, MachineSpec, PipelineRun, TimelineEntry, Trigger
from relaunch.settings import Settings

HOSTILE = "\x1b]0;pwn\x07\x1b[2J\r\u202e\x9b31m"
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store holding a run, a delivery and a dead letter whose every outside field carries escape sequences."""
    monkeypatch.setenv("RELAUNCH_HOME", str(tmp_path))
    store = App(Settings(home=tmp_path)).store
    trigger = Trigger(
        kind="push",
        delivery_key=f"github:{HOSTILE}",
        repo=f"acme/{HOSTILE}",
        ref=f"refs/heads/{HOSTILE}",
        sha=HOSTILE,
        actor=f"mallory{HOSTILE}",
        reason=f"commit message: {HOSTILE}",
    )
    run = PipelineRun(id="run-1", pipeline="digits", trigger=trigger, reason=HOSTILE, model_version=HOSTILE)
    store.record_delivery(Delivery(key=f"github:{HOSTILE}", source="github", outcome=HOSTILE, run_ids=["run-1"]), [run])
    store.append_timeline("run-1", TimelineEntry(kind=HOSTILE, message=f"build by {HOSTILE}"))
    store.dead_letter(f"drift{HOSTILE}", f"bad reason {HOSTILE}", HOSTILE)
    return tmp_path


@pytest.mark.parametrize("command", [["runs"], ["runs", "show", "run-1"], ["inbox"], ["inbox", "--dead"]])
def test_text_output_escapes_outside_fields(home: Path, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    assert main(command) == 0
    out = capsys.readouterr().out
    assert RAW.search(out) is None, repr(out)
    assert "\\x1b" in out  # the escape is shown, not dropped


def test_runs_show_names_the_author_and_the_ref_visibly(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "show", "run-1"]) == 0
    out = capsys.readouterr().out
    assert "refs/heads/\\x1b]0;pwn\\x07\\x1b[2J\\x0d\\u202e\\x9b31m" in out and "mallory\\x1b" in out


@pytest.mark.parametrize("command", [["runs"], ["runs", "show", "run-1"], ["inbox"], ["inbox", "--dead"]])
def test_json_output_is_ascii_and_round_trips(
    home: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    assert main([*command, "--json"]) == 0
    out = capsys.readouterr().out
    assert out.isascii() and RAW.search(out) is None
    assert any(HOSTILE in text for text in strings(json.loads(out)))  # escaped for the terminal, intact as data


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict | list):
        for item in value.values() if isinstance(value, dict) else value:
            yield from strings(item)


def test_cost_escapes_what_the_ledger_holds(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entry = skipped_entry(f"digits{HOSTILE}", f"push{HOSTILE}", 10.0, MachineSpec())
    App(Settings(home=home)).store.put_effect("skip-1", "cost", entry.model_dump(mode="json"))
    assert main(["cost"]) == 0
    text = capsys.readouterr().out
    assert RAW.search(text) is None and "\\x1b" in text
    assert main(["cost", "--json"]) == 0
    out = capsys.readouterr().out
    assert out.isascii() and any(HOSTILE in text for text in strings(json.loads(out)))
