"""The CLI's views, rendered to plain text: units that fit the size, states coloured by meaning, nothing cut."""

from __future__ import annotations

import io

import pytest
from rich.console import Console, RenderableType

from relaunch.cli.render import cost_view, human_gpu, human_seconds, human_usd, run_detail, runs_table, state_text
from relaunch.domain.cost import LedgerEntry, Spend, skipped_entry, summarize
from relaunch.domain.model import Decision, MachineSpec, PipelineRun, RunState, TimelineEntry, Trigger


def plain(renderable: RenderableType, width: int = 200) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None, markup=False, emoji=False, highlight=False).print(renderable)
    return "".join(line.rstrip() + "\n" for line in out.getvalue().splitlines())


@pytest.mark.parametrize(
    ("usd", "shown"),
    [(0, "$0"), (0.000333, "$0.00033"), (0.0031, "$0.0031"), (0.042, "$0.042"), (0.5, "$0.50"), (12.345, "$12.35")],
)
def test_dollars_keep_two_significant_digits_below_a_dollar(usd: float, shown: str) -> None:
    assert human_usd(usd) == shown
    assert human_usd(1234.5) == "$1,234.50"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0"), (0.01, "<0.1 s"), (5.5, "5.5 s"), (42.2, "42 s"), (210, "3.5 min"), (4320, "1.2 h")],
)
def test_durations_pick_the_unit_that_fits(seconds: float, shown: str) -> None:
    assert human_seconds(seconds) == shown


def test_gpu_time_names_its_unit() -> None:
    assert (human_gpu(0), human_gpu(42 / 3600), human_gpu(3.5 / 60), human_gpu(1.2)) == (
        "0",
        "42 GPU-s",
        "3.5 GPU-min",
        "1.2 GPU-h",
    )


def test_states_are_coloured_by_what_they_mean_and_an_unknown_one_still_renders() -> None:
    assert state_text("promoted").style == "green" and state_text("failed").style == "red"
    assert state_text("rejected").style == "red" and state_text("training", terminal=False).style == "blue"
    assert state_text("some_future_state").plain == "some_future_state"


@pytest.mark.parametrize(("promote", "shown"), [(True, "evaluated (gate passed)"), (False, "evaluated (gate failed)")])
def test_an_evaluated_pull_request_shows_its_gate_verdict_beside_its_state(promote: bool, shown: str) -> None:
    decision = Decision(promote=promote, checks=[], candidate={"accuracy": 0.9})
    trigger = Trigger(kind="pull_request", delivery_key="k", sha="a" * 40)
    run = PipelineRun(id="r1", pipeline="digits", trigger=trigger, state=RunState.EVALUATED, decision=decision)
    assert shown in plain(runs_table([run], {}))
    assert shown in plain(run_detail(run, [], None, None)).splitlines()[0]


def test_a_narrow_terminal_folds_long_values_instead_of_cutting_them() -> None:
    run = PipelineRun(
        id="digits-" + "a" * 40, pipeline="digits", trigger=Trigger(kind="pull_request", delivery_key="k")
    )
    text = plain(runs_table([run], {}), width=60)
    assert "…" not in text
    assert text.count("a") == 40  # every character of the id is there, folded over lines


def test_cost_view_counts_what_trained_and_notes_what_is_unpriced() -> None:
    odd = MachineSpec(machine_type="x9-huge")
    entries = [
        LedgerEntry(
            run_id="r1",
            pipeline="digits",
            trigger_kind="push",
            outcome="promoted",
            at=0,
            train_machine=odd,
            train_s=30,
            trained=True,
        ),
        skipped_entry("digits", "push", 0, MachineSpec()),
    ]
    text = plain(cost_view(summarize(entries)))
    assert "note: no price for machine type 'x9-huge'" in text
    total = next(line for line in text.splitlines() if line.startswith("total"))
    assert total.split()[:5] == ["total", "1", "1", "0", "1"] and "30 s" in total


def test_run_detail_shows_the_log_tail_and_the_cost_of_each_job() -> None:
    run = PipelineRun(
        id="r1",
        pipeline="digits",
        trigger=Trigger(kind="schedule", delivery_key="k"),
        state=RunState.FAILED,
        reason="train failed: exited with code 1",
    )
    log = TimelineEntry(kind="log", message="job log tail", data={"tail": "Traceback\nValueError: bad"})
    entry = LedgerEntry(
        run_id="r1",
        pipeline="digits",
        trigger_kind="schedule",
        outcome="failed",
        at=0,
        train_machine=MachineSpec(),
        train_s=75,
    )
    text = plain(run_detail(run, [log], entry, Spend(job_seconds=75, usd=0.0046)))
    assert "ValueError: bad" in text and "$0.0046: 1.2 min of jobs (train 1.2 min, evaluate 0), no GPU" in text
    assert "trigger   schedule\n" in text  # no None for the ref and commit it lacks
