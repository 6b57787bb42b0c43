"""The query the drift cooldown asks of every store: a pipeline's runs created since a time, newest first."""

from __future__ import annotations

from relaunch.domain.model import RunState
from relaunch.domain.ports import RunStore
from tests.contract.builders import make_delivery, make_run


def test_runs_since_lists_the_pipelines_runs_from_that_time_newest_first(store: RunStore) -> None:
    runs = [
        make_run("old", "digits", 100.0, RunState.PROMOTED),
        make_run("edge", "digits", 200.0, RunState.FAILED),
        make_run("new", "digits", 300.0),
        make_run("other", "churn", 250.0),
    ]
    store.record_delivery(make_delivery("k1"), runs)

    assert [r.id for r in store.runs_since("digits", 200.0)] == ["new", "edge"]  # `since` itself included
    assert store.runs_since("digits", 200.0)[1].state is RunState.FAILED  # whole runs: the caller judges them
    assert [r.id for r in store.runs_since("churn", 0.0)] == ["other"]
    assert store.runs_since("digits", 301.0) == [] and store.runs_since("nope", 0.0) == []
