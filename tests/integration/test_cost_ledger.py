"""The cost ledger on the real SQLite store, `relaunch cost` reading it back, and the store's new queries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relaunch.adapters.local.sqlite_store import SqliteRunStore
from relaunch.cli import main
from relaunch.config_files import load_spec
from relaunch.domain.model import Delivery, MachineSpec, PipelineRun, RunState, Trigger
from relaunch.service import ledger

SPEC = load_spec(Path(__file__).resolve().parents[2] / "pipelines" / "digits.yaml")
T4 = MachineSpec(machine_type="n1-standard-4", accelerator_type="NVIDIA_TESLA_T4", accelerator_count=1)
GPU_SPEC = SPEC.model_copy(update={"train": SPEC.train.model_copy(update={"machine": T4})})


def run(n: int, state: RunState, kind: str = "push", train_s: float = 0.0, jobs: tuple[str, ...] = ()) -> PipelineRun:
    trigger = Trigger(kind=kind, delivery_key=f"d{n}")  # type: ignore[arg-type]
    return PipelineRun(
        id=f"digits-{n}",
        pipeline="digits",
        trigger=trigger,
        state=state,
        created_at=float(n),
        stage_durations={"train": train_s} if train_s else {},
        jobs={j: f"job-{j}" for j in jobs},
    )


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RELAUNCH_HOME", str(tmp_path))
    monkeypatch.delenv("RELAUNCH_PRICE_FILE", raising=False)
    return tmp_path


def test_active_runs_and_effects_queries(tmp_path: Path) -> None:
    store = SqliteRunStore(tmp_path / "relaunch.db")
    runs = [run(3, RunState.TRAINING), run(1, RunState.RECEIVED), run(2, RunState.PROMOTED)]
    store.record_delivery(Delivery(key="k", source="github"), runs)
    assert [r.id for r in store.active_runs("digits")] == ["digits-1", "digits-3"]
    assert store.active_runs("other") == []
    store.put_effect("a", "cost", {"n": 1})
    store.put_effect("b", "notify:x", {"n": 2})
    store.put_effect("c", "cost", {"n": 3})
    store.put_effect("a", "cost", {"n": 9})  # first write wins
    assert store.list_effects("cost") == [{"n": 1}, {"n": 3}]
    store.close()


def test_relaunch_cost_summarises_spend_and_savings(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = SqliteRunStore(home / "relaunch.db")
    finished = [
        run(1, RunState.PROMOTED, train_s=3600, jobs=("train", "evaluate")),
        run(2, RunState.SUPERSEDED, train_s=600, jobs=("train",)),
        run(3, RunState.REJECTED, "drift", train_s=1800, jobs=("train", "evaluate")),
    ]
    for r in finished:
        assert ledger.record_run(store, r, GPU_SPEC) is not None
        assert ledger.record_run(store, r, GPU_SPEC) is None  # once
    assert ledger.record_run(store, run(4, RunState.TRAINING), GPU_SPEC) is None  # not finished: nothing
    ledger.record_skip(store, "digits-skip", GPU_SPEC, at=10.0)
    store.close()

    assert main(["cost", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    total = summary["total"]
    # trained: the two whose training finished; the superseded run's 600 s are spent but it never trained
    assert (total["runs"], total["trained"], total["superseded"], total["skipped"]) == (3, 2, 1, 1)
    assert total["job_seconds"] == pytest.approx(3600 + 600 + 1800)
    assert total["gpu_hours"] == pytest.approx(1 + 600 / 3600 + 0.5)
    # median finished training 2700 s: the superseded run saved 2700 - 600 s, the skipped push 2700 s
    assert total["gpu_hours_saved"] == pytest.approx((2100 + 2700) / 3600)
    assert set(summary["by_trigger"]) == {"push", "drift"} and summary["by_pipeline"]["digits"]["runs"] == 3

    assert main(["cost", "--pipeline", "nope", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["runs"] == 0
    assert main(["cost"]) == 0
    assert "pipeline digits" in capsys.readouterr().out


def test_relaunch_cost_with_a_price_file_and_a_bad_one(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = SqliteRunStore(home / "relaunch.db")
    ledger.record_run(store, run(1, RunState.PROMOTED, train_s=3600, jobs=("train", "evaluate")), GPU_SPEC)
    store.close()
    prices = home / "prices.yaml"
    prices.write_text("machines: {n1-standard-4: 1.0}\naccelerators: {NVIDIA_TESLA_T4: 2.0}\n")
    monkeypatch.setenv("RELAUNCH_PRICE_FILE", str(prices))
    assert main(["cost", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["usd"] == pytest.approx(3.0)
    prices.write_text("spot_factor: 7\n")
    assert main(["cost"]) == 2
    assert "spot_factor" in capsys.readouterr().err
