"""Cost: a price table, one job's estimate, and the ledger summary behind `relaunch cost`. Pure.

Recording (for the orchestrator): when a run reaches a terminal state, build `ledger_entry(run, spec.train.machine,
spec.evaluate.machine)` and keep it as the run's side effect `cost` (`store.put_effect(run.id, "cost",
entry.model_dump(mode="json"))`, first write wins, so a retried step records it once). The machines are copied into
the entry because the spec may change later. A superseded run whose training was cancelled mid-way must carry the
seconds it did train in `run.stage_durations["train"]` (from the cancelled job's status) before it is recorded.
Ingest records a `skipped_entry` for a push that a path filter skipped (a push that would otherwise have trained).
`relaunch cost` reads the entries back and shows `summarize(entries, prices)` (relaunch.cli.render), the prices read by
`config_files.load_prices(settings.price_file)`.

Trained means the training job ran to completion and produced a model (recorded as `LedgerEntry.trained`), whatever
came after: promoted, rejected, evaluated only, rolled back, or superseded after it trained. A training that failed or
was cancelled part-way is not trained; the compute it used is still spent, and counted.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from relaunch.domain.model import MachineSpec, PipelineRun

# Approximate on-demand Vertex AI custom-training list prices in us-central1 (USD per hour), machine and GPUs billed
# separately as Vertex bills them. Estimates, not invoices: override them with a price file for your region/discounts.
DEFAULT_MACHINES: dict[str, float] = {
    "n1-standard-4": 0.2185,
    "n1-standard-8": 0.4370,
    "n1-standard-16": 0.8740,
    "n1-standard-32": 1.7480,
    "n1-highmem-2": 0.1361,
    "n1-highmem-4": 0.2722,
    "n1-highmem-8": 0.5444,
    "n1-highmem-16": 1.0887,
    "n1-highmem-32": 2.1774,
    "e2-standard-4": 0.1541,
    "e2-standard-8": 0.3082,
    "e2-standard-16": 0.6164,
    "e2-standard-32": 1.2328,
    "g2-standard-4": 0.2028,
    "g2-standard-8": 0.4056,
    "g2-standard-12": 0.6084,
    "g2-standard-16": 0.8112,
    "a2-highgpu-1g": 0.8479,
    "a2-highgpu-2g": 1.6958,
    "a2-ultragpu-1g": 1.1690,
}
DEFAULT_ACCELERATORS: dict[str, float] = {
    "NVIDIA_TESLA_T4": 0.4025,
    "NVIDIA_TESLA_P100": 1.6790,
    "NVIDIA_TESLA_V100": 2.8520,
    "NVIDIA_L4": 0.6440,
    "NVIDIA_TESLA_A100": 3.3741,
    "NVIDIA_A100_80GB": 4.5148,
    "NVIDIA_H100_80GB": 11.0631,
}


class UnknownPrice(ValueError):
    """The price table has no entry for a machine or accelerator type."""


class PriceTable(BaseModel):
    """USD per hour per machine type and per accelerator (one GPU), and the spot price as a share of on-demand."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    machines: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_MACHINES))
    accelerators: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_ACCELERATORS))
    spot_factor: float = Field(default=0.4, gt=0, le=1, description="Spot price = on-demand x this factor")

    def hourly(self, machine: MachineSpec) -> float:
        """USD per hour of the whole job: every replica with its accelerators, spot-discounted if spot."""
        if machine.machine_type not in self.machines:
            raise UnknownPrice(f"no price for machine type {machine.machine_type!r}; add it to the price file")
        per_replica = self.machines[machine.machine_type]
        if machine.accelerator_type and machine.accelerator_count:
            if machine.accelerator_type not in self.accelerators:
                raise UnknownPrice(f"no price for accelerator {machine.accelerator_type!r}; add it to the price file")
            per_replica += self.accelerators[machine.accelerator_type] * machine.accelerator_count
        return per_replica * machine.replica_count * (self.spot_factor if machine.spot else 1.0)


DEFAULT_PRICES = PriceTable()


class CostLine(BaseModel):
    """The estimated cost of running `machine` for `seconds`."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    machine_type: str
    accelerator_type: str | None
    accelerator_count: int
    seconds: float
    gpu_hours: float
    usd: float


def estimate(machine: MachineSpec, seconds: float, prices: PriceTable = DEFAULT_PRICES) -> CostLine:
    """GPU-hours (accelerators x replicas x hours) and USD of one job; UnknownPrice for an unpriced type."""
    if seconds < 0:
        raise ValueError(f"seconds must be >= 0, not {seconds}")
    hours = seconds / 3600
    gpus = machine.accelerator_count * machine.replica_count if machine.accelerator_type else 0
    return CostLine(
        machine_type=machine.machine_type,
        accelerator_type=machine.accelerator_type,
        accelerator_count=machine.accelerator_count,
        seconds=seconds,
        gpu_hours=gpus * hours,
        usd=prices.hourly(machine) * hours,
    )


class LedgerEntry(BaseModel):
    """What one run (or one skipped push) cost, as recorded when it ended."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    run_id: str | None = Field(description="None for a push that started no run")
    pipeline: str
    trigger_kind: str
    outcome: str = Field(description="The run's terminal state, or 'skipped'")
    at: float
    train_machine: MachineSpec
    train_s: float = Field(default=0.0, ge=0, description="Seconds training ran, all attempts (0: never trained)")
    trained: bool = Field(default=False, description="Training ran to completion (a model was produced)")
    evaluate_machine: MachineSpec = Field(default_factory=MachineSpec)
    evaluate_s: float = Field(default=0.0, ge=0)


def ledger_entry(run: PipelineRun, train: MachineSpec, evaluate: MachineSpec) -> LedgerEntry:
    """The ledger entry of a finished run. Evaluation is only submitted once training succeeded, so a run with both
    jobs trained; a W&B run evaluates an artifact and trains nothing."""
    return LedgerEntry(
        run_id=run.id,
        pipeline=run.pipeline,
        trigger_kind=run.trigger.kind,
        outcome=run.state.value,
        at=run.updated_at,
        train_machine=train,
        train_s=run.stage_durations.get("train", 0.0),
        trained="evaluate" in run.jobs and "train" in run.jobs,
        evaluate_machine=evaluate,
        evaluate_s=run.stage_durations.get("evaluate", 0.0),
    )


def skipped_entry(pipeline: str, trigger_kind: str, at: float, train: MachineSpec) -> LedgerEntry:
    """The entry of a push a pipeline skipped (no watched path changed): a training it did not pay for."""
    return LedgerEntry(
        run_id=None, pipeline=pipeline, trigger_kind=trigger_kind, outcome="skipped", at=at, train_machine=train
    )


class Spend(BaseModel):
    """What some job time cost: seconds of jobs, GPU-hours (accelerators x replicas x hours) and USD."""

    model_config = ConfigDict(defer_build=True)  # its validator is built on first use (cold start)

    job_seconds: float = 0.0
    gpu_hours: float = 0.0
    usd: float = 0.0
    notes: list[str] = Field(default_factory=list, description="Types the price table lacks (their USD is not counted)")


class CostRow(BaseModel):
    """Totals of a group of ledger entries, in exact numbers: the CLI picks the units a reader sees."""

    model_config = ConfigDict(defer_build=True)  # its validator is built on first use (cold start)

    runs: int = 0
    trained: int = Field(default=0, description="Runs whose training ran to completion")
    superseded: int = 0
    skipped: int = 0
    job_seconds: float = Field(default=0.0, description="Seconds of training and evaluation jobs, all attempts")
    gpu_hours: float = 0.0
    usd: float = 0.0
    job_seconds_saved: float = Field(default=0.0, description="Training seconds coalescing and skips did not spend")
    gpu_hours_saved: float = 0.0
    usd_saved: float = 0.0


class CostSummary(BaseModel):
    """`relaunch cost`: totals per pipeline, per trigger kind and overall, with what could not be priced."""

    model_config = ConfigDict(defer_build=True)  # its validator is built on first use (cold start)

    by_pipeline: dict[str, CostRow] = Field(default_factory=dict)
    by_trigger: dict[str, CostRow] = Field(default_factory=dict)
    total: CostRow = Field(default_factory=CostRow)
    notes: list[str] = Field(default_factory=list)


def summarize(entries: Iterable[LedgerEntry], prices: PriceTable = DEFAULT_PRICES) -> CostSummary:
    """Spend and savings. A superseded run that never finished training, or a skipped push, saved the pipeline's
    median successful training (less what it did train before it was cancelled)."""
    entries = list(entries)
    medians = _median_train_s(entries)
    summary = CostSummary()
    notes: set[str] = set()
    for entry in entries:
        spent = entry_cost(entry, prices)
        notes.update(spent.notes)
        saved = Spend()
        if entry.outcome in ("superseded", "skipped") and not entry.trained:
            median = medians.get(entry.pipeline)
            if median is None:
                notes.add(f"{entry.pipeline}: no finished training yet, savings not estimated")
            else:
                saved = _priced(entry.train_machine, max(0.0, median - entry.train_s), prices)
                notes.update(saved.notes)
        for row in (
            summary.by_pipeline.setdefault(entry.pipeline, CostRow()),
            summary.by_trigger.setdefault(entry.trigger_kind, CostRow()),
            summary.total,
        ):
            _add(row, entry, spent, saved)
    summary.notes = sorted(notes)
    return summary


def entry_cost(entry: LedgerEntry, prices: PriceTable = DEFAULT_PRICES) -> Spend:
    """What one run (or skipped push) spent on training and evaluation; an unpriced type costs no USD and a note."""
    train = _priced(entry.train_machine, entry.train_s, prices)
    evaluate = _priced(entry.evaluate_machine, entry.evaluate_s, prices)
    return Spend(
        job_seconds=train.job_seconds + evaluate.job_seconds,
        gpu_hours=train.gpu_hours + evaluate.gpu_hours,
        usd=train.usd + evaluate.usd,
        notes=sorted({*train.notes, *evaluate.notes}),
    )


def _median_train_s(entries: list[LedgerEntry]) -> dict[str, float]:
    durations: dict[str, list[float]] = defaultdict(list)
    for entry in entries:
        if entry.trained and entry.train_s > 0:
            durations[entry.pipeline].append(entry.train_s)
    return {pipeline: statistics.median(values) for pipeline, values in durations.items()}


def _priced(machine: MachineSpec, seconds: float, prices: PriceTable) -> Spend:
    """The spend of `seconds` on `machine`; an unpriced type counts its GPU-hours, no dollars, and a note."""
    if seconds <= 0:
        return Spend()
    try:
        line = estimate(machine, seconds, prices)
    except UnknownPrice as exc:
        gpus = machine.accelerator_count * machine.replica_count if machine.accelerator_type else 0
        return Spend(job_seconds=seconds, gpu_hours=gpus * seconds / 3600, notes=[str(exc)])
    return Spend(job_seconds=seconds, gpu_hours=line.gpu_hours, usd=line.usd)


def _add(row: CostRow, entry: LedgerEntry, spent: Spend, saved: Spend) -> None:
    row.runs += entry.run_id is not None
    row.trained += entry.trained
    row.superseded += entry.outcome == "superseded"
    row.skipped += entry.outcome == "skipped"
    row.job_seconds += spent.job_seconds
    row.gpu_hours += spent.gpu_hours
    row.usd += spent.usd
    row.job_seconds_saved += saved.job_seconds
    row.gpu_hours_saved += saved.gpu_hours
    row.usd_saved += saved.usd
