"""What `runs`, `runs show`, `inbox` and `cost` print: columns that fit their content, nothing cut, colour only on a
terminal, and outside text shown inert (issue 17)."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest

from relaunch.bootstrap import App
from relaunch.cli import main
from relaunch.domain.cost import ledger_entry
from relaunch.domain.model import (
    Delivery,
    MachineSpec,
    PipelineRun,
    RolloutProgress,
    RunState,
    TimelineEntry,
    Trigger,
)
from relaunch.settings import Settings

LONG_OUTCOME = "skipped: digits: cooldown: a run of this pipeline trained 91 s ago and the cooldown is 6 h (21600 s)"
MARKUP = "[red]x[/red]"
SHA = "2a6b4c5dd24e4ab05b9222508c5e7ddad53709d3"


def fields(line: str) -> list[str]:
    """One line of a plain table: its cells, which two or more spaces separate (as `awk -F '  +'` reads them)."""
    return re.split(r" {2,}", line.strip())


def table(out: str) -> list[dict[str, str]]:
    """A plain table's rows as header -> cell; every row must have exactly the header's cells."""
    lines = [line for line in out.splitlines() if line.strip()]
    header = fields(lines[0])
    rows = [fields(line) for line in lines[1:]]
    assert all(len(row) == len(header) for row in rows), out
    return [dict(zip(header, row, strict=True)) for row in rows]


@pytest.fixture
def store_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store with a pull request run, a ref-only dispatch run, a replayed delivery and a dead letter."""
    monkeypatch.setenv("RELAUNCH_HOME", str(tmp_path))
    monkeypatch.delenv("RELAUNCH_PRICE_FILE", raising=False)
    store = App(Settings(home=tmp_path)).store
    pr = PipelineRun(
        id="digits-pr-0123456789abcdef",
        pipeline="digits",
        trigger=Trigger(kind="pull_request", delivery_key="github:pr", repo="acme/digits", sha=SHA, pr_number=7),
        state=RunState.REJECTED,
        reason="accuracy 0.83 < floor 0.90",
        created_at=1_700_000_000.0,
    )
    dispatch = PipelineRun(
        id="digits-dispatch",
        pipeline="digits",
        trigger=Trigger(kind="manual", delivery_key="pubsub:schedule:m1#replay-1", ref="refs/heads/main"),
        state=RunState.FAILED,
        reason="build failed: no clone URL",
        created_at=1_700_000_100.0,
    )
    store.record_delivery(Delivery(key="github:pr", source="github", outcome="accepted", run_ids=[pr.id]), [pr])
    store.record_delivery(
        Delivery(key="pubsub:schedule:m1#replay-1", source="schedule", outcome=LONG_OUTCOME, run_ids=[dispatch.id]),
        [dispatch],
    )
    store.dead_letter("relaunch-commands", "orchestrator refused the command: " + "x" * 120, "{}")
    return tmp_path


def test_runs_columns_fit_their_content(store_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs"]) == 0
    rows = table(capsys.readouterr().out)
    by_id = {row["RUN"]: row for row in rows}
    pr, dispatch = by_id["digits-pr-0123456789abcdef"], by_id["digits-dispatch"]
    assert (pr["TRIGGER"], pr["COMMIT"], pr["STATE"]) == ("pull_request", SHA[:7], "rejected")
    assert (dispatch["TRIGGER"], dispatch["COMMIT"]) == ("manual", "-")


def test_inbox_has_a_header_and_cuts_no_value(store_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inbox"]) == 0
    rows = table(capsys.readouterr().out)
    replayed = next(row for row in rows if row["KEY"] == "pubsub:schedule:m1#replay-1")
    assert replayed["OUTCOME"] == LONG_OUTCOME and replayed["RUNS"] == "digits-dispatch"
    assert replayed["SOURCE"] == "schedule"
    assert main(["inbox", "--dead"]) == 0
    [dead] = table(capsys.readouterr().out)
    assert dead["SOURCE"] == "relaunch-commands" and dead["REASON"].endswith("x" * 120)


def test_runs_show_says_each_thing_once_and_never_none(store_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = App(Settings(home=store_home)).store
    store.append_timeline(
        "digits-dispatch", TimelineEntry(kind="log", message="job log tail", data={"tail": "a\nboom"})
    )
    assert main(["runs", "show", "digits-dispatch"]) == 0
    out = capsys.readouterr().out
    assert "None" not in out
    assert out.splitlines()[0].split() == ["digits-dispatch", "failed"]  # the state once; the reason on its own line
    assert re.search(r"^reason +build failed: no clone URL$", out, re.M)
    assert "manual refs/heads/main" in out
    assert "      boom" in out.splitlines()[-1]  # the job log's tail, indented under its entry


def test_runs_show_without_an_id_shows_the_newest_run(store_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "show"]) == 0
    newest = capsys.readouterr().out.splitlines()[0].split()[0]
    assert main(["runs", "--json", "--limit", "1"]) == 0
    assert newest == json.loads(capsys.readouterr().out)[0]["id"]
    assert main(["runs", "show", "--pipeline", "no-such-pipeline"]) == 1
    assert "no runs of pipeline no-such-pipeline yet" in capsys.readouterr().out


def test_a_promoted_run_whose_reason_is_its_state_prints_the_state_once(
    store_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = App(Settings(home=store_home)).store
    run = store.get_run("digits-pr-0123456789abcdef")
    assert run is not None
    store.save_run(run.model_copy(update={"state": RunState.PROMOTED, "reason": "promoted", "model_version": "v1"}))
    assert main(["runs", "show", run.id]) == 0
    out = capsys.readouterr().out
    assert out.count("promoted") == 1 and "pull_request acme/digits" in out and SHA in out


def test_a_rolled_back_run_shows_the_version_it_registered(
    store_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = App(Settings(home=store_home)).store
    run = store.get_run("digits-pr-0123456789abcdef")
    assert run is not None
    progress = RolloutProgress(
        phase="rolled_back", started_at=1.0, phase_started_at=1.0, previous_version="v2", new_version="v3"
    )
    store.save_run(run.model_copy(update={"state": RunState.ROLLED_BACK, "rollout": progress}))
    assert main(["runs"]) == 0
    by_id = {row["RUN"]: row for row in table(capsys.readouterr().out)}
    assert by_id[run.id]["MODEL"] == "v3"
    assert main(["runs", "show", run.id]) == 0
    assert "v3" in capsys.readouterr().out


def test_runs_and_runs_show_carry_each_runs_cost(store_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = App(Settings(home=store_home)).store
    run = store.get_run("digits-pr-0123456789abcdef")
    assert run is not None
    done = run.model_copy(
        update={"stage_durations": {"train": 2.5, "evaluate": 3.0}, "jobs": {"train": "j", "evaluate": "k"}}
    )
    cpu = MachineSpec(machine_type="n1-standard-4")
    store.put_effect(run.id, "cost", ledger_entry(done, cpu, cpu).model_dump(mode="json"))
    assert main(["runs"]) == 0
    by_id = {row["RUN"]: row for row in table(capsys.readouterr().out)}
    assert by_id[run.id]["COST"] == "$0.00033" and by_id["digits-dispatch"]["COST"] == "-"
    assert main(["runs", "show", run.id]) == 0
    out = capsys.readouterr().out
    assert "$0.00033" in out and "5.5 s" in out


def test_hostile_text_is_shown_inert_in_every_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAUNCH_HOME", str(tmp_path))
    hostile = f"{MARKUP}\x1b[2J:smile:"
    trigger = Trigger(kind="push", delivery_key=f"github:{hostile}", ref=f"refs/heads/{hostile}", actor=hostile)
    run = PipelineRun(id="run-1", pipeline=f"digits{hostile}", trigger=trigger, reason=hostile)
    store = App(Settings(home=tmp_path)).store
    store.record_delivery(Delivery(key=f"github:{hostile}", source="github", outcome=hostile, run_ids=["run-1"]), [run])
    for command in (["runs"], ["runs", "show", "run-1"], ["inbox"]):
        for out in (_run_cli(command, tmp_path, tty=False), _run_cli(command, tmp_path, tty=True)):
            visible = re.sub(r"\x1b\[[0-9;]*m", "", out)  # the colours the CLI itself chose
            assert MARKUP in visible and "\\x1b[2J" in visible and ":smile:" in visible, (command, out)
            assert "\x1b[2J" not in out


def test_colour_only_on_a_terminal_and_never_with_no_color(store_home: Path) -> None:
    piped = _run_cli(["runs"], store_home, tty=False)
    assert "\x1b[" not in piped and "rejected" in piped
    on_tty = _run_cli(["runs"], store_home, tty=True)
    assert re.search(r"\x1b\[[0-9;]*31m" + "rejected", on_tty), repr(on_tty)  # rejected in red
    assert "\x1b[" not in _run_cli(["runs"], store_home, tty=True, no_color=True)


def test_cost_shows_small_amounts_in_units_that_fit(store_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = App(Settings(home=store_home)).store
    run = store.get_run("digits-pr-0123456789abcdef")
    assert run is not None
    done = run.model_copy(
        update={"stage_durations": {"train": 2.5, "evaluate": 3.0}, "jobs": {"train": "j", "evaluate": "k"}}
    )
    cpu = MachineSpec(machine_type="n1-standard-4")
    store.put_effect(run.id, "cost", ledger_entry(done, cpu, cpu).model_dump(mode="json"))
    assert main(["cost"]) == 0
    rows = {row["GROUP"]: row for row in table(capsys.readouterr().out)}
    assert rows["total"]["COST"] == "$0.00033" and rows["total"]["JOB TIME"] == "5.5 s"
    assert rows["total"]["GPU TIME"] == "0" and rows["trigger pull_request"]["TRAINED"] == "1"


def _run_cli(command: list[str], home: Path, *, tty: bool, no_color: bool = False) -> str:
    """The console script's stdout, on a pseudo-terminal (tty) or a pipe."""
    env = {**os.environ, "RELAUNCH_HOME": str(home), "TERM": "xterm-256color", "COLUMNS": "160"}
    env.pop("NO_COLOR", None)
    env.pop("FORCE_COLOR", None)
    if no_color:
        env["NO_COLOR"] = "1"
    argv = [sys.executable, "-m", "relaunch", *command]
    if not tty:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, env=env, stdout=follower, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 30)
        assert ready, "the CLI printed nothing for 30 s"
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the follower side closed: the process ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
    return b"".join(chunks).decode().replace("\r\n", "\n")
