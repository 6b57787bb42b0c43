"""LocalRegistry keeps each version's provenance and content digest, and a registry from before metadata still loads."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from relaunch.adapters.local.registry import LocalRegistry
from tests.integration.test_local_registry import artifacts

OLD_SCHEMA = """
CREATE TABLE versions (
    pipeline TEXT NOT NULL, number INTEGER NOT NULL, version TEXT NOT NULL, run_id TEXT NOT NULL,
    artifact_uri TEXT NOT NULL, metrics TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (pipeline, number), UNIQUE (pipeline, run_id)
);
CREATE TABLE champions (pipeline TEXT PRIMARY KEY, version TEXT NOT NULL);
"""


def test_a_version_keeps_its_metadata_and_the_digest_of_its_files(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path / "registry")
    source = artifacts(tmp_path, "a", "one")
    meta = {"trigger": "schedule", "commit": "a" * 40, "run_id": "run-1"}
    first = registry.register("digits", "run-1", source, {"accuracy": 0.97}, meta)
    assert first.metadata == {**meta, "content_digest": registry.content_digest(source)}
    assert registry.get("digits", "v1") == first and LocalRegistry(tmp_path / "registry").get("digits", "v1") == first
    same = artifacts(tmp_path, "b", "one")  # the same files in another folder
    assert registry.content_digest(same) == first.metadata["content_digest"]
    assert registry.content_digest(artifacts(tmp_path, "c", "two")) != first.metadata["content_digest"]
    assert registry.content_digest(str(tmp_path / "nowhere")) is None


def test_a_registry_written_before_metadata_loads_and_registers(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    root.mkdir()
    with sqlite3.connect(root / "registry.db") as conn:
        conn.executescript(OLD_SCHEMA)
        row = ("digits", 1, "v1", "run-1", str(root / "digits" / "v1"), json.dumps({"accuracy": 0.9}), 1.0)
        conn.execute("INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?)", row)
        conn.execute("INSERT INTO champions VALUES ('digits', 'v1')")
    registry = LocalRegistry(root)
    old = registry.champion("digits")
    assert old is not None and old.version == "v1" and old.metadata == {}
    new = registry.register("digits", "run-2", artifacts(tmp_path, "a"), {}, {"trigger": "drift"})
    assert new.version == "v2" and registry.get("digits", "v2") == new and new.metadata["trigger"] == "drift"
