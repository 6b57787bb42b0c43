"""The specs cache the webhook path reads on every request: reloads on change, looks at the folder once a second."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from relaunch import bootstrap
from relaunch.bootstrap import SpecCache

DIGITS = Path(__file__).resolve().parents[2] / "pipelines" / "digits.yaml"


def test_specs_reload_when_a_file_changes_but_the_folder_is_looked_at_once_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [100.0]
    monkeypatch.setattr(bootstrap.time, "monotonic", lambda: now[0])
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
