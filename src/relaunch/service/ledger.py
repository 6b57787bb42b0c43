"""The cost ledger in the store: one keyed `cost` effect per finished run or skipped push, read back by `relaunch cost`.

Entries are side effects keyed (run id, "cost"): first write wins, so a retried step or a redelivered command records a
run once. A skipped push has no run; its entry is keyed by the run id it would have had (stable per delivery).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relaunch.domain.cost import LedgerEntry, ledger_entry, skipped_entry
from relaunch.domain.effects import Effect
from relaunch.domain.model import PipelineRun
from relaunch.domain.ports import EffectLedger

if TYPE_CHECKING:
    from relaunch.domain.spec import PipelineSpec


def record_run(store: EffectLedger, run: PipelineRun, spec: PipelineSpec | None) -> LedgerEntry | None:
    """Record a terminal run's entry once (None: not terminal, no spec to price it with, or already recorded)."""
    if not run.state.terminal or spec is None or store.get_effect(run.id, Effect.COST) is not None:
        return None
    entry = ledger_entry(run, spec.train.machine, spec.evaluate.machine)
    store.put_effect(run.id, Effect.COST, entry.model_dump(mode="json"))
    return entry


def record_skip(store: EffectLedger, key: str, spec: PipelineSpec, *, at: float) -> LedgerEntry | None:
    """Record a push the spec's path filter skipped, once per `key` (the run id it would have had)."""
    if store.get_effect(key, Effect.COST) is not None:
        return None
    entry = skipped_entry(spec.name, "push", at, spec.train.machine)
    store.put_effect(key, Effect.COST, entry.model_dump(mode="json"))
    return entry


def of_run(store: EffectLedger, run_id: str) -> LedgerEntry | None:
    """The entry a run recorded when it ended (None: still running, or ended before the ledger existed)."""
    raw = store.get_effect(run_id, Effect.COST)
    return None if raw is None else LedgerEntry.model_validate(raw)


def read(store: EffectLedger, pipeline: str | None = None) -> list[LedgerEntry]:
    """Every recorded entry (of one pipeline), oldest first."""
    entries = [LedgerEntry.model_validate(raw) for raw in store.list_effects(Effect.COST)]
    return [e for e in entries if pipeline in (None, e.pipeline)]
