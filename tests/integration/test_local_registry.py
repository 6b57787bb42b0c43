"""LocalRegistry on a real directory: idempotent registration, version numbering, the champion alias."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaunch.adapters.local.registry import LocalRegistry


def artifacts(tmp_path: Path, name: str, content: str = "model bytes") -> str:
    """A candidate's artifact directory with a fake model file and a nested file."""
    directory = tmp_path / "candidates" / name
    (directory / "assets").mkdir(parents=True)
    (directory / "model.joblib").write_text(content)
    (directory / "assets" / "vocab.txt").write_text("a b c")
    return str(directory)


def test_register_copies_and_numbers_versions_per_pipeline(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path / "registry")
    first = registry.register("digits", "run-1", artifacts(tmp_path, "a", "one"), {"accuracy": 0.97})
    second = registry.register("digits", "run-2", artifacts(tmp_path, "b", "two"), {"accuracy": 0.98})
    other = registry.register("iris", "run-1", artifacts(tmp_path, "c"), {})

    assert (first.version, second.version, other.version) == ("v1", "v2", "v1")
    assert Path(first.artifact_uri) == (tmp_path / "registry" / "digits" / "v1").resolve()
    assert (Path(second.artifact_uri) / "model.joblib").read_text() == "two"
    assert (Path(second.artifact_uri) / "assets" / "vocab.txt").read_text() == "a b c"
    assert registry.get("digits", "v2") == second
    assert registry.get("digits", "v3") is None
    assert [v.version for v in registry.list_versions("digits")] == ["v1", "v2"]
    assert second.metrics == {"accuracy": 0.98} and second.run_id == "run-2"


def test_register_is_idempotent_on_pipeline_and_run(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path / "registry")
    source = artifacts(tmp_path, "a", "original")
    first = registry.register("digits", "run-1", source, {"accuracy": 0.9})
    Path(source, "model.joblib").write_text("changed after registration")

    again = LocalRegistry(tmp_path / "registry").register("digits", "run-1", source, {"accuracy": 0.1})
    assert again == first
    assert (Path(first.artifact_uri) / "model.joblib").read_text() == "original"
    assert len(registry.list_versions("digits")) == 1
    assert sorted(p.name for p in (tmp_path / "registry" / "digits").iterdir()) == ["v1"]


def test_orphan_directory_from_a_crash_is_replaced(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path / "registry")
    orphan = tmp_path / "registry" / "digits" / "v1"
    orphan.mkdir(parents=True)
    (orphan / "half-written").write_text("")
    version = registry.register("digits", "run-1", artifacts(tmp_path, "a"), {})
    assert version.version == "v1"
    assert sorted(p.name for p in orphan.iterdir()) == ["assets", "model.joblib"]


def test_champion_alias(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path / "registry")
    assert registry.champion("digits") is None
    v1 = registry.register("digits", "run-1", artifacts(tmp_path, "a"), {})
    v2 = registry.register("digits", "run-2", artifacts(tmp_path, "b"), {})
    registry.set_champion("digits", "v1")
    assert registry.champion("digits") == v1
    registry.set_champion("digits", "v2")
    assert LocalRegistry(tmp_path / "registry").champion("digits") == v2
    with pytest.raises(KeyError):
        registry.set_champion("digits", "v9")
    assert registry.champion("digits") == v2
    assert registry.champion("iris") is None


def test_bad_inputs_are_refused(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path / "registry")
    with pytest.raises(FileNotFoundError):
        registry.register("digits", "run-1", str(tmp_path / "missing"), {})
    with pytest.raises(ValueError):
        registry.register("../escape", "run-1", artifacts(tmp_path, "a"), {})
    with pytest.raises(ValueError):
        registry.register("digits", "run-1", "gs://bucket/model", {})
    assert registry.list_versions("digits") == []
