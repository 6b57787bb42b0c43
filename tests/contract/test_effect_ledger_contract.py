"""The EffectLedger contract on every store: the first write of a (run, step) wins, and the ledger lists by step."""

from __future__ import annotations

from relaunch.domain.ports import RunStore


def test_effects_first_write_wins(store: RunStore) -> None:
    assert store.get_effect("r1", "submit:train") is None

    store.put_effect("r1", "submit:train", {"job_id": "j1"})
    store.put_effect("r1", "submit:train", {"job_id": "j2"})

    assert store.get_effect("r1", "submit:train") == {"job_id": "j1"}
    assert store.get_effect("r1", "submit:evaluate") is None
    store.put_effect("r1:submit", "train", {"job_id": "other"})  # keys must not collide when ':' is in the parts
    assert store.get_effect("r1", "submit:train") == {"job_id": "j1"}
    assert store.get_effect("r1:submit", "train") == {"job_id": "other"}


def test_list_effects_by_step_first_write_wins(store: RunStore) -> None:
    store.put_effect("a", "cost", {"n": 1})
    store.put_effect("b", "notify:build:pending", {"n": 2})
    store.put_effect("c", "cost", {"n": 3})
    store.put_effect("a", "cost", {"n": 9})
    assert store.list_effects("cost") == [{"n": 1}, {"n": 3}]
