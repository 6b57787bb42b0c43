"""The cost ledger in the store: one keyed `cost` effect per finished run or skipped push, read back by `relaunch cost`.

Entries are side effects keyed (run id, "cost"): first write wins, so a retried step or a redelivered command records a
run once. A skipped push has no run; its entry is keyed by the run id it would have had (stable per delivery).
"""

from __future__ import annotations

import time

from relaunch.domain.cost import LedgerEntry, ledger_entry, skipped_entry
from relaunch.domain.model import PipelineRun
from relaunch.domain.ports import RunStore
from relaunch.domain.spec import PipelineSpec

STEP = "cost"


def record_run(store: RunStore, run: PipelineRun, spec: PipelineSpec | None) -> LedgerEntry | None:
    """Record a terminal run's entry once (None: not terminal, no spec to price it with, or already recorded)."""
    if not run.state.terminal or spec is None or store.get_effect(run.id, STEP) is not None:
        return None
    entry = ledger_entry(run, spec.train.machine, spec.evaluate.machine)
    store.put_effect(run.id, STEP, entry.model_dump(mode="json"))
    return entry


def record_skip(store: RunStore, key: str, spec: PipelineSpec, at: float | None = None) -> LedgerEntry | None:
    """Record a push the spec's path filter skipped, once per `key` (the run id it would have had)."""
    if store.get_effect(key, STEP) is not None:
        return None
    entry = skipped_entry(spec.name, "push", time.time() if at is None else at, spec.train.machine)
    store.put_effect(key, STEP, entry.model_dump(mode="json"))
    return entry


def read(store: RunStore, pipeline: str | None = None) -> list[LedgerEntry]:
    """Every recorded entry (of one pipeline), oldest first."""
    entries = [LedgerEntry.model_validate(raw) for raw in store.list_effects(STEP)]
    return [e for e in entries if pipeline in (None, e.pipeline)]
