"""The compiled specs cache: a cold start reads validated specs instead of parsing YAML and building validators, and
never trusts a cache that was compiled from other files or that does not read back."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pytest

from relaunch import config_files
from relaunch.config_files import load_specs
from relaunch.service import spec_cache
from relaunch.service.spec_cache import SpecCache, compiled_specs

DIGITS = Path(__file__).resolve().parents[2] / "pipelines" / "digits.yaml"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    shutil.copy(DIGITS, pipelines / "digits.yaml")
    return pipelines


def no_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any parse of a spec file from here on fails the test."""

    def refuse(path: Path) -> None:
        raise AssertionError(f"{path} was parsed: the compiled cache was not used")

    monkeypatch.setattr(config_files, "load_spec", refuse)


def test_a_second_load_reads_the_compiled_specs_equal_to_the_parsed_ones(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache" / "pipelines.pickle"
    parsed = compiled_specs(folder, cache)
    assert cache.is_file() and parsed == load_specs(folder)
    no_yaml(monkeypatch)
    assert compiled_specs(folder, cache) == parsed
    assert [p.name for p in cache.parent.iterdir()] == ["pipelines.pickle"]  # no temporary file left behind


def test_an_edited_file_is_parsed_again_and_the_cache_rewritten(folder: Path, tmp_path: Path) -> None:
    cache = tmp_path / "pipelines.pickle"
    compiled_specs(folder, cache)
    text = DIGITS.read_text().replace("name: digits", "name: renamed")
    (folder / "digits.yaml").write_text(text)
    os.utime(folder / "digits.yaml", (1, 1))  # the key is the bytes, not the time: an old mtime changes nothing
    assert list(compiled_specs(folder, cache)) == ["renamed"]
    (folder / "other.yaml").write_text(DIGITS.read_text().replace("name: digits", "name: other"))
    assert sorted(compiled_specs(folder, cache)) == ["other", "renamed"]


@pytest.mark.parametrize("content", [b"", b"not a key\n", b"0" * 64 + b"\nnot a pickle"])
def test_a_cache_that_does_not_read_back_is_a_miss(folder: Path, tmp_path: Path, content: bytes) -> None:
    cache = tmp_path / "pipelines.pickle"
    cache.write_bytes(content)
    assert list(compiled_specs(folder, cache)) == ["digits"]
    assert cache.read_bytes() != content  # rewritten


def test_a_cache_of_the_right_key_that_holds_no_specs_is_a_miss(folder: Path, tmp_path: Path) -> None:
    cache = tmp_path / "pipelines.pickle"
    compiled_specs(folder, cache)
    key = cache.read_bytes().split(b"\n", 1)[0]
    cache.write_bytes(key + b"\n" + pickle.dumps({"digits": "a string, not a spec"}))
    assert list(compiled_specs(folder, cache).values())[0].name == "digits"


def test_the_key_covers_the_code_of_the_models(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Specs pickled by other model code would unpickle as objects the current code never validated."""
    domain = tmp_path / "domain"
    shutil.copytree(Path(spec_cache.spec_module.__file__).parent, domain, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(spec_cache.spec_module, "__file__", str(domain / "spec.py"))
    before = spec_cache._key(folder)
    (domain / "spec_sweep.py").write_text((domain / "spec_sweep.py").read_text() + "\n# a field added\n")
    assert before is not None and spec_cache._key(folder) != before
    monkeypatch.setattr(spec_cache, "COMPILED_FORMAT", "another format")
    assert spec_cache._key(folder) not in (before, None)


def test_an_invalid_spec_is_never_cached_and_raises_as_before(folder: Path, tmp_path: Path) -> None:
    (folder / "digits.yaml").write_text("name: digits\ntrain: {command: 42}\n")
    cache = tmp_path / "pipelines.pickle"
    with pytest.raises(spec_cache.SpecError, match="digits.yaml"):
        compiled_specs(folder, cache)
    assert not cache.exists()


def test_a_home_that_cannot_be_written_only_costs_the_parse(folder: Path, tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would be")
    assert list(compiled_specs(folder, blocked / "cache" / "pipelines.pickle")) == ["digits"]


def test_spec_cache_serves_the_compiled_specs_and_still_reloads_on_change(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [100.0]
    monkeypatch.setattr(spec_cache.time, "monotonic", lambda: now[0])
    compiled = tmp_path / "pipelines.pickle"
    assert list(SpecCache(folder, compiled=compiled)()) == ["digits"]  # the first process compiles
    with monkeypatch.context() as patched:
        no_yaml(patched)
        cache = SpecCache(folder, compiled=compiled)  # a later cold start
        assert list(cache()) == ["digits"]
    (folder / "digits.yaml").write_text(DIGITS.read_text().replace("name: digits", "name: renamed"))
    os.utime(folder / "digits.yaml", (1, 1))
    now[0] += 2
    assert list(cache()) == ["renamed"]
