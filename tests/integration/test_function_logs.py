"""What a function process writes to its log, served by functions-framework (its own Flask app, in process).

On the gcp profile Cloud Run parses each stdout line that is one JSON object into a LogEntry: `severity`, `message`,
`logging.googleapis.com/trace` (projects/P/traces/T, from the request's trace header) and our own fields (run id,
pipeline, delivery) as jsonPayload (https://cloud.google.com/logging/docs/structured-logging). The embedded profile
keeps readable lines. Both are checked here on the real entry points, as the platform would run them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import functions_framework
import pytest

from relaunch import bootstrap
from relaunch.settings import PROFILE_DEFAULTS, Settings
from relaunch.simulate import github_headers
from tests.integration.test_functions import PUSH, ROOT, SOURCE, command_event

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SLACK = "https://hooks.slack.com/services/T000/B000/very-secret-part"
LOCAL = dict(PROFILE_DEFAULTS["local"])


@pytest.fixture(autouse=True)
def root_logging() -> Iterator[None]:
    """Each test configures the root logger as a function process would; the next test gets it back as it was."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    bootstrap.use(None)


def serve(tmp_path: Path, profile: str, **kw: Any) -> bootstrap.App:
    """An App on `profile` with local adapters: the log format follows the profile, not the adapters."""
    base = {"home": tmp_path, "pipelines_dir": ROOT / "pipelines", "github_webhook_secret": "s", **LOCAL}
    built = bootstrap.App(Settings(**{**base, "profile": profile, "gcp_project": "proj-1", **kw}))
    bootstrap.use(built)
    return built


def post_push(headers: dict[str, str]) -> int:
    webhook = functions_framework.create_app("github_webhook", SOURCE).test_client()
    return webhook.post("/", data=PUSH, headers={**github_headers("push", PUSH, "s", "d-1"), **headers}).status_code


def json_lines(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.splitlines()]  # every line is one JSON object, or this raises
    assert lines and all(isinstance(line, dict) for line in lines)
    return lines


def test_on_gcp_a_webhook_logs_json_lines_with_severity_delivery_and_the_request_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serve(tmp_path, "gcp")
    assert post_push({"X-Cloud-Trace-Context": f"{TRACE}/74;o=1"}) == 202
    lines = json_lines(capsys.readouterr().out)
    [done] = [line for line in lines if line["severity"] == "INFO" and line.get("delivery") == "github:d-1"]
    assert done["message"].startswith("GitHub delivery d-1: 202")
    assert done["logging.googleapis.com/trace"] == f"projects/proj-1/traces/{TRACE}"
    assert done["logging.googleapis.com/spanId"] == "000000000000004a"  # the header's decimal span, as 16 hex digits
    assert done["logging.googleapis.com/trace_sampled"] is True


def test_on_gcp_the_w3c_traceparent_is_used_and_a_forged_trace_header_is_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serve(tmp_path, "gcp")
    assert post_push({"traceparent": f"00-{TRACE}-00f067aa0ba902b7-00"}) == 202
    [done] = [line for line in json_lines(capsys.readouterr().out) if line.get("delivery") == "github:d-1"]
    assert done["logging.googleapis.com/trace"] == f"projects/proj-1/traces/{TRACE}"
    assert done["logging.googleapis.com/spanId"] == "00f067aa0ba902b7"
    assert done["logging.googleapis.com/trace_sampled"] is False
    forged = 'x/1;o=1", "severity": "EMERGENCY'
    assert post_push({"X-Cloud-Trace-Context": forged}) == 200  # the same push again: a duplicate
    lines = json_lines(capsys.readouterr().out)
    assert lines and all("logging.googleapis.com/trace" not in line for line in lines)
    assert {line["severity"] for line in lines} <= {"INFO", "WARNING"}


def test_on_gcp_a_command_logs_its_run_and_pipeline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    serve(tmp_path, "gcp")
    command = {
        "type": "report_skip",
        "run_id": "r-9",
        "pipeline": "digits",
        "repo": "o/r",
        "sha": "a" * 40,
        "description": "skipped",
    }
    headers, body = command_event(command, message_id="m-5")
    orchestrator = functions_framework.create_app("orchestrator", SOURCE).test_client()
    orchestrator.post("/", data=body, headers=headers)
    lines = [line for line in json_lines(capsys.readouterr().out) if line.get("run_id") == "r-9"]
    assert lines and all(line["pipeline"] == "digits" for line in lines)
    assert all(line["delivery"] == "pubsub:orchestrator:m-5" for line in lines)


def test_on_gcp_a_secret_in_a_log_line_is_redacted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    serve(tmp_path, "gcp", slack_webhook_url=SLACK)
    post_push({})
    logging.getLogger("relaunch.adapters.slack").warning("POST %s failed", SLACK)  # as a requests error would say
    out = capsys.readouterr().out
    assert "very-secret-part" not in out and "[redacted]" in out


def test_the_embedded_profile_logs_readable_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    serve(tmp_path, "local")
    assert post_push({"X-Cloud-Trace-Context": f"{TRACE}/74;o=1"}) == 202
    err = capsys.readouterr().err
    [done] = [line for line in err.splitlines() if "github:d-1" in line and " INFO " in line]
    assert "relaunch.functions.github_webhook: " in done and done.endswith("[delivery=github:d-1]")
    assert not done.startswith("{")


def test_on_cloud_run_settings_that_do_not_validate_still_log_one_json_entry_with_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("K_SERVICE", "github-webhook")  # set by Cloud Run, which runs the functions
    monkeypatch.setenv("RELAUNCH_MAX_BODY_BYTES", "lots")
    bootstrap.use(None)
    assert post_push({}) == 503
    [error] = [line for line in json_lines(capsys.readouterr().out) if line["severity"] == "ERROR"]
    assert "the app cannot be built" in error["message"] and "Traceback" in error["message"]
