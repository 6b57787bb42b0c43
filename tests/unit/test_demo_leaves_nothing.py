"""`relaunch demo --home DIR` keeps its state in DIR, and leaves no temporary folder of its own behind (issue 17)."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

import pytest

from relaunch import demo


class _Stack:
    """Stands in for the embedded stack: the test is about the demo's folders, not the stack it starts."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def start(self) -> None:
        assert Path(self.settings.pipelines_dir).is_dir()  # the demo's specs exist while the stack runs

    def stop(self) -> None:
        pass


@pytest.mark.parametrize("keep_home", [True, False])
def test_the_demo_removes_its_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep_home: bool
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setattr(demo, "embedded_stack", _Stack)
    outcome = object()
    monkeypatch.setattr(demo, "run_scenario", lambda *args: outcome)
    home = tmp_path / "home" if keep_home else None

    assert demo.scenario(home, out=io.StringIO()) is outcome

    assert list(scratch.iterdir()) == []
