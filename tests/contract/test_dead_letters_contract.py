"""The DeadLetters contract on every store: kept newest first, each with its own id."""

from __future__ import annotations

from relaunch.domain.ports import RunStore


def test_dead_letters_are_kept_newest_first(store: RunStore) -> None:
    store.dead_letter("orchestrator", "malformed command", '{"type": "nope"}')
    store.dead_letter("drift_alert", "unknown schema", "{}")

    letters = store.list_dead_letters()

    assert [(d.source, d.reason, d.payload) for d in letters] == [
        ("drift_alert", "unknown schema", "{}"),
        ("orchestrator", "malformed command", '{"type": "nope"}'),
    ]
    assert len({d.id for d in letters}) == 2
    assert [d.source for d in store.list_dead_letters(limit=1)] == ["drift_alert"]


def test_dead_letters_of_one_source_are_listed_behind_newer_ones_of_another(store: RunStore) -> None:
    """The store filters by source: an old letter is found however many newer ones of other sources there are."""
    store.dead_letter("drift_alert", "unknown schema", "old")
    for i in range(12):
        store.dead_letter("relaunch-commands", f"refused {i}", "{}")
    store.dead_letter("drift_alert", "unknown schema", "new")

    assert [d.payload for d in store.list_dead_letters(limit=5, source="drift_alert")] == ["new", "old"]
    assert [d.payload for d in store.list_dead_letters(limit=1, source="drift_alert")] == ["new"]
    newest = [d.reason for d in store.list_dead_letters(limit=2, source="relaunch-commands")]
    assert newest == ["refused 11", "refused 10"]
    assert store.list_dead_letters(source="github") == []
    assert len(store.list_dead_letters(source=None)) == 14
