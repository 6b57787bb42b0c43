"""The embedded stack's readable lines: `time LEVEL logger run=<id>: message`, and `relaunch up`'s own log file."""

from __future__ import annotations

import logging
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from relaunch import logs


@pytest.fixture(autouse=True)
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)
    logs.begin(None)


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("relaunch.x", logging.INFO, __file__, 1, message, (), None)


def test_the_run_id_leads_each_line_bound_to_a_run_so_grep_finds_its_story() -> None:
    logs.begin(None)
    logs.bind(run_id="digits-1\nforged", pipeline="digits")
    line = logs.ReadableLines().format(record("building"))
    assert line.endswith("INFO relaunch.x run=digits-1\\x0aforged: building [pipeline=digits]")
    logs.begin(None)
    assert logs.ReadableLines().format(record("idle")).endswith("INFO relaunch.x: idle")


def test_up_logs_to_a_private_file_with_secrets_redacted_and_warnings_captured(tmp_path: Path) -> None:
    secret = "stack-secret-0123456789"
    path = tmp_path / "stack.log"
    logs.configure(structured=False, secrets=[secret], path=path)
    logs.begin(None)
    logs.bind(run_id="r-7")
    logging.getLogger("relaunch.adapters.slack").warning("POST https://hooks/%s failed", secret)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("a library complains", UserWarning, stacklevel=1)
    logs.configure(structured=False, secrets=[secret], path=path)  # again: the same file, one handler
    logging.getLogger("relaunch.x").info("second")
    text = path.read_text()
    assert secret not in text and "POST https://hooks/[redacted] failed" in text
    assert " WARNING relaunch.adapters.slack run=r-7: " in text and "a library complains" in text
    assert text.count("second") == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
