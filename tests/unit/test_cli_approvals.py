"""`relaunch reject` refuses a reason it could not show on a commit status or in Slack, before touching the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaunch.cli import main


@pytest.mark.parametrize("reason", ["", "   ", "\x1b[31mred", "x" * 501])
def test_a_bad_reason_is_refused_with_one_line(
    reason: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RELAUNCH_HOME", str(tmp_path))
    assert main(["reject", "digits-1", "--reason", reason]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--reason must be 1 to 500 printable characters" in err
    assert list(tmp_path.iterdir()) == []  # no store was created


def test_reject_needs_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["reject", "digits-1"])
    assert info.value.code == 2 and "--reason" in capsys.readouterr().err


def test_approving_without_a_store_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RELAUNCH_HOME", str(tmp_path / "none"))
    assert main(["approve", "digits-1"]) == 1
    assert "no runs:" in capsys.readouterr().err
