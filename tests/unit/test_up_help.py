"""`relaunch up -h` lists every setting `up` reads, with its default, derived from Settings (issue 17)."""

from __future__ import annotations

import pytest

from relaunch.cli import main
from relaunch.settings import Settings, secret_fields


def test_up_help_lists_every_relaunch_setting_with_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["up", "-h"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "--port-base" in out
    for name, info in Settings.model_fields.items():
        assert f"RELAUNCH_{name.upper()} " in out, name
        if name not in secret_fields() and info.default is not None:
            assert f"RELAUNCH_{name.upper()} (default {info.default})" in out
    assert "RELAUNCH_GITHUB_WEBHOOK_SECRET (secret, unset)" in out
    assert "RELAUNCH_RECONCILE_INTERVAL_S (default 30.0)" in out
