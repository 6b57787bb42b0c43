"""The specs cache the webhook path reads on every request: reloads on change, looks at the folder once a second."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from relaunch.service import spec_cache
from relaunch.service.spec_cache import SpecCache

DIGITS = Path(__file__).resolve().parents[2] / "pipelines" / "digits.yaml"


def test_specs_reload_when_a_file_changes_but_the_folder_is_looked_at_once_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [100.0]
    monkeypatch.setattr(spec_cache.time, "monotonic", lambda: now[0])
    shutil.copy(DIGITS, tmp_path / "digits.yaml")
    cache = SpecCache(tmp_path)
    assert list(cache()) == ["digits"]

    text = DIGITS.read_text().replace("name: digits", "name: renamed")
    (tmp_path / "digits.yaml").write_text(text)
    os.utime(tmp_path / "digits.yaml", (1, 1))  # a different mtime, whatever the clock's resolution
    now[0] += 0.5
    assert list(cache()) == ["digits"]  # within the second: the cached specs, no folder listing
    now[0] += 0.6
    assert list(cache()) == ["renamed"]


def test_an_edit_that_does_not_validate_keeps_the_last_valid_specs_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [100.0]
    monkeypatch.setattr(spec_cache.time, "monotonic", lambda: now[0])
    shutil.copy(DIGITS, tmp_path / "digits.yaml")
    cache = SpecCache(tmp_path)
    good = cache()
    (tmp_path / "digits.yaml").write_text("name: digits\ntrain: {command: 42}\n")
    os.utime(tmp_path / "digits.yaml", (1, 1))
    now[0] += 2
    assert cache() is good and cache.problem is not None and "digits.yaml" in cache.problem
    shutil.copy(DIGITS, tmp_path / "digits.yaml")  # fixed: served again, the problem gone
    now[0] += 2
    assert list(cache()) == ["digits"] and cache.problem is None


def test_with_no_valid_specs_yet_the_error_is_raised_every_time(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: x\n")
    cache = SpecCache(tmp_path)
    for _ in range(2):
        with pytest.raises(spec_cache.SpecError):
            cache()
