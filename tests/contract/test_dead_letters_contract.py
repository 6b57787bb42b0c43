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
