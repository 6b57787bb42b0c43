"""Environments on the embedded stack's adapters: the local registry's aliases, the SQLite promotion history."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaunch.adapters.local.registry import LocalRegistry
from relaunch.adapters.local.sqlite_store import SqliteRunStore
from relaunch.domain.environments import PromotionRecord


def registered(tmp_path: Path, runs: int) -> LocalRegistry:
    registry = LocalRegistry(tmp_path / "registry")
    for n in range(1, runs + 1):
        source = tmp_path / f"model-{n}"
        source.mkdir()
        (source / "model.joblib").write_bytes(b"m%d" % n)
        registry.register("digits", f"run-{n}", str(source), {"accuracy": 0.9})
    return registry


def test_each_environment_has_its_own_alias_beside_the_champion(tmp_path: Path) -> None:
    registry = registered(tmp_path, 2)
    assert registry.alias("digits", "staging") is None
    registry.set_alias("digits", "staging", "v2")
    registry.set_alias("digits", "production", "v1")
    registry.set_champion("digits", "v1")
    staging, production = registry.alias("digits", "staging"), registry.alias("digits", "production")
    assert staging is not None and (staging.version, staging.run_id) == ("v2", "run-2")
    assert production is not None and production.version == "v1"
    reopened = LocalRegistry(tmp_path / "registry")  # the aliases are kept on disk
    assert (held := reopened.alias("digits", "staging")) is not None and held.version == "v2"
    with pytest.raises(KeyError, match="no version 'v9'"):
        registry.set_alias("digits", "staging", "v9")


def test_a_version_an_environment_serves_is_never_deleted(tmp_path: Path) -> None:
    registry = registered(tmp_path, 2)
    registry.set_champion("digits", "v1")
    registry.set_alias("digits", "staging", "v2")
    with pytest.raises(ValueError, match="v2 serves staging"):
        registry.delete_version("digits", "v2")
    assert registry.get("digits", "v2") is not None


def record(environment: str, version: str, at: float, kind: str = "promoted") -> PromotionRecord:
    return PromotionRecord.model_validate(
        {
            "pipeline": "digits",
            "environment": environment,
            "kind": kind,
            "version": version,
            "run_id": f"r-{version}",
            "sha": "a" * 40,
            "approved_by": "ada",
            "checks": ["served staging 60 s"],
            "at": at,
        }
    )


def test_the_history_keeps_every_promotion_once_newest_first(tmp_path: Path) -> None:
    store = SqliteRunStore(tmp_path / "relaunch.db")
    store.record_promotion(record("staging", "v1", 10.0))
    store.record_promotion(record("production", "v1", 20.0))
    store.record_promotion(record("staging", "v2", 30.0))
    store.record_promotion(record("staging", "v2", 31.0))  # the same promotion again: kept once
    store.record_promotion(record("staging", "v1", 40.0, kind="rolled_back"))
    assert [(r.environment, r.version, r.kind) for r in store.promotions("digits")] == [
        ("staging", "v1", "rolled_back"),
        ("staging", "v2", "promoted"),
        ("production", "v1", "promoted"),
        ("staging", "v1", "promoted"),
    ]
    assert [r.version for r in store.promotions("digits", "production")] == ["v1"]
    assert store.promotions("digits", "staging", limit=1)[0].checks == ["served staging 60 s"]
    assert store.promotions("other") == []
