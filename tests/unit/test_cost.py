"""Price table, job estimates and the ledger summary. Pure values (plus a price file on disk)."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaunch.config_files import load_prices
from relaunch.domain.cost import (
    DEFAULT_PRICES,
    LedgerEntry,
    PriceTable,
    UnknownPrice,
    entry_cost,
    estimate,
    ledger_entry,
    skipped_entry,
    summarize,
)
from relaunch.domain.model import MachineSpec, PipelineRun, RunState, Trigger, TriggerKind

T4 = MachineSpec(machine_type="n1-standard-4", accelerator_type="NVIDIA_TESLA_T4", accelerator_count=1)
CPU = MachineSpec(machine_type="n1-standard-4")


def test_estimate_prices_machine_and_gpus_per_replica() -> None:
    line = estimate(T4, 1800)
    assert line.gpu_hours == 0.5
    assert line.usd == pytest.approx((0.2185 + 0.4025) / 2)
    a100x2 = MachineSpec(
        machine_type="a2-highgpu-2g", accelerator_type="NVIDIA_TESLA_A100", accelerator_count=2, replica_count=3
    )
    big = estimate(a100x2, 3600)
    assert big.gpu_hours == 6.0 and big.usd == pytest.approx(3 * (1.6958 + 2 * 3.3741))
    assert (big.machine_type, big.accelerator_type, big.accelerator_count, big.seconds) == (
        "a2-highgpu-2g",
        "NVIDIA_TESLA_A100",
        2,
        3600,
    )
    assert estimate(CPU, 3600).gpu_hours == 0 and estimate(CPU, 3600).usd == pytest.approx(0.2185)


def test_spot_is_discounted_and_unknown_types_are_named() -> None:
    spot = T4.model_copy(update={"spot": True})
    assert estimate(spot, 3600).usd == pytest.approx(0.4 * (0.2185 + 0.4025))
    with pytest.raises(UnknownPrice, match="'x9-huge'"):
        estimate(MachineSpec(machine_type="x9-huge"), 60)
    with pytest.raises(UnknownPrice, match="'TPU_V9'"):
        estimate(CPU.model_copy(update={"accelerator_type": "TPU_V9", "accelerator_count": 1}), 60)
    with pytest.raises(ValueError, match="seconds"):
        estimate(CPU, -1)


def test_every_documented_type_has_a_default_price() -> None:
    machines = ["n1-standard-4", "n1-standard-8", "n1-standard-16", "n1-highmem-8", "e2-standard-4", "g2-standard-8"]
    gpus = ["NVIDIA_TESLA_T4", "NVIDIA_TESLA_V100", "NVIDIA_TESLA_P100", "NVIDIA_L4", "NVIDIA_TESLA_A100"]
    gpus += ["NVIDIA_A100_80GB", "NVIDIA_H100_80GB"]
    assert all(DEFAULT_PRICES.machines[m] > 0 for m in [*machines, "a2-highgpu-1g"])
    assert all(DEFAULT_PRICES.accelerators[g] > 0 for g in gpus)


def test_a_price_file_overrides_and_extends_the_defaults(tmp_path: Path) -> None:
    yaml_file = tmp_path / "prices.yaml"
    yaml_file.write_text("machines:\n  n1-standard-4: 0.10\n  x9-huge: 9.0\nspot_factor: 0.25\n")
    prices = load_prices(yaml_file)
    assert prices.machines["n1-standard-4"] == 0.10 and prices.machines["x9-huge"] == 9.0
    assert prices.machines["e2-standard-4"] == DEFAULT_PRICES.machines["e2-standard-4"]
    assert prices.accelerators == DEFAULT_PRICES.accelerators and prices.spot_factor == 0.25
    json_file = tmp_path / "prices.json"
    json_file.write_text('{"accelerators": {"NVIDIA_TESLA_T4": 0.35}}')
    assert load_prices(json_file).accelerators["NVIDIA_TESLA_T4"] == 0.35
    assert load_prices(None) is DEFAULT_PRICES


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("spot_factor: 2\n", "spot_factor"),
        ("machnes: {}\n", "machnes"),
        ("machines: {n1-standard-4: cheap}\n", "machines.n1-standard-4"),
        ("- a list\n", "mapping"),
        ("machines: [unclosed\n", "cannot read"),
    ],
)
def test_a_bad_price_file_names_the_file_and_field(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        load_prices(path)
    assert str(path) in str(info.value)


def run(
    state: RunState,
    kind: TriggerKind = "push",
    train_s: float | None = None,
    evaluate_s: float | None = None,
    pipeline: str = "digits",
) -> PipelineRun:
    durations = {k: v for k, v in (("train", train_s), ("evaluate", evaluate_s)) if v is not None}
    jobs = {"train": "j1", **({"evaluate": "j2"} if evaluate_s is not None else {})}
    return PipelineRun(
        id=f"{pipeline}-{state.value}-{train_s}",
        pipeline=pipeline,
        trigger=Trigger(kind=kind, delivery_key="k"),
        state=state,
        jobs=jobs if train_s is not None else {},
        stage_durations=durations,
    )


def test_ledger_entry_records_a_finished_run() -> None:
    entry = ledger_entry(run(RunState.PROMOTED, train_s=3600, evaluate_s=60), T4, CPU)
    assert (entry.outcome, entry.trigger_kind, entry.train_s, entry.trained, entry.evaluate_s) == (
        "promoted",
        "push",
        3600,
        True,
        60,
    )
    assert entry.train_machine == T4 and entry.evaluate_machine == CPU
    cancelled = ledger_entry(run(RunState.SUPERSEDED, train_s=600), T4, CPU)
    assert cancelled.train_s == 600 and not cancelled.trained
    assert LedgerEntry.model_validate_json(entry.model_dump_json()) == entry


def test_summary_counts_spend_and_what_coalescing_and_skips_saved() -> None:
    entries = [
        ledger_entry(run(RunState.PROMOTED, train_s=3600, evaluate_s=360), T4, CPU),
        ledger_entry(run(RunState.REJECTED, train_s=1800, evaluate_s=360), T4, CPU),
        ledger_entry(run(RunState.REJECTED, "drift", train_s=5400, evaluate_s=360), T4, CPU),
        ledger_entry(run(RunState.SUPERSEDED), T4, CPU),  # superseded before it trained: saves the median, 3600 s
        ledger_entry(run(RunState.SUPERSEDED, train_s=600), T4, CPU),  # cancelled after 600 s: saves 3000 s
        skipped_entry("digits", "push", at=0, train=T4),  # a path filter skipped it: saves 3600 s
        ledger_entry(run(RunState.FAILED, "manual", train_s=60), T4, CPU),  # code error: spent, saves nothing
    ]
    summary = summarize(entries)
    hourly_t4 = 0.2185 + 0.4025
    total = summary.total
    # trained: the three whose training ran to completion; the cancelled and the failed training only spent
    assert (total.runs, total.trained, total.superseded, total.skipped) == (6, 3, 1 + 1, 1)
    assert total.job_seconds == pytest.approx(3600 + 1800 + 5400 + 600 + 60 + 3 * 360)
    assert total.job_seconds_saved == pytest.approx(3600 + 3000 + 3600)
    assert total.gpu_hours == pytest.approx((3600 + 1800 + 5400 + 600 + 60) / 3600)
    assert total.usd == pytest.approx(total.gpu_hours * hourly_t4 + 3 * 0.1 * 0.2185)
    assert total.gpu_hours_saved == pytest.approx((3600 + 3000 + 3600) / 3600)
    assert total.usd_saved == pytest.approx(total.gpu_hours_saved * hourly_t4)
    push, drift = summary.by_trigger["push"], summary.by_trigger["drift"]
    assert (push.runs, push.skipped, drift.runs) == (4, 1, 1)
    assert drift.gpu_hours == pytest.approx(1.5) and drift.gpu_hours_saved == 0
    assert summary.by_trigger["manual"].gpu_hours == pytest.approx(60 / 3600)
    assert summary.by_pipeline["digits"] == total
    assert summary.notes == []


def test_savings_need_a_finished_training_and_unpriced_types_are_noted() -> None:
    odd = MachineSpec(machine_type="x9-huge", accelerator_type="NVIDIA_TESLA_T4", accelerator_count=2)
    entries = [
        ledger_entry(run(RunState.SUPERSEDED, pipeline="iris"), T4, CPU),
        ledger_entry(run(RunState.PROMOTED, train_s=1800, evaluate_s=0, pipeline="big"), odd, CPU),
    ]
    summary = summarize(entries, PriceTable())
    assert summary.by_pipeline["iris"].gpu_hours_saved == 0
    assert summary.by_pipeline["big"].gpu_hours == pytest.approx(1.0) and summary.by_pipeline["big"].usd == 0
    assert summary.notes == [
        "iris: no finished training yet, savings not estimated",
        "no price for machine type 'x9-huge'; add it to the price file",
    ]


def test_an_evaluated_pull_request_that_trained_counts_as_trained_whatever_its_state() -> None:
    pr = run(RunState.REJECTED, "pull_request", train_s=100, evaluate_s=20)
    entry = ledger_entry(pr, T4, CPU).model_copy(update={"outcome": "evaluated"})  # a state this module never names
    summary = summarize([entry])
    assert (summary.total.trained, summary.total.superseded, summary.total.gpu_hours_saved) == (1, 0, 0)
    assert summary.by_trigger["pull_request"].job_seconds == pytest.approx(120)


def test_one_entry_costs_its_training_and_its_evaluation() -> None:
    entry = ledger_entry(run(RunState.PROMOTED, train_s=2.5, evaluate_s=3.0), CPU, CPU)
    spend = entry_cost(entry)
    assert spend.job_seconds == 5.5 and spend.gpu_hours == 0 and spend.usd == pytest.approx(0.2185 * 5.5 / 3600)
    gpu = entry_cost(ledger_entry(run(RunState.PROMOTED, train_s=1800, evaluate_s=60), T4, CPU))
    assert gpu.gpu_hours == pytest.approx(0.5) and gpu.notes == []
    odd = entry_cost(ledger_entry(run(RunState.PROMOTED, train_s=60, evaluate_s=0), MachineSpec(machine_type="x"), CPU))
    assert odd.usd == 0 and odd.notes == ["no price for machine type 'x'; add it to the price file"]
