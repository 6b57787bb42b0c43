"""Trace headers (hostile input) and the two line formats, tested with values: no server, no process."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from relaunch import logs
from relaunch.triggers.trace import TraceContext, trace_context

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Cloud-Trace-Context": f"{TRACE}/74;o=1"}, TraceContext(TRACE, "000000000000004a", True)),
        ({"x-cloud-trace-context": f"{TRACE.upper()}/1"}, TraceContext(TRACE, "0000000000000001", False)),
        ({"X-Cloud-Trace-Context": TRACE}, TraceContext(TRACE, None, False)),
        ({"X-Cloud-Trace-Context": f"{TRACE}/{2**64};o=1"}, TraceContext(TRACE, None, True)),  # past 64 bits
        ({"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"}, TraceContext(TRACE, "00f067aa0ba902b7", True)),
        (  # both valid: the W3C header wins
            {"Traceparent": f"00-{TRACE}-00f067aa0ba902b7-00", "X-Cloud-Trace-Context": f"{'1' * 32}/5"},
            TraceContext(TRACE, "00f067aa0ba902b7", False),
        ),
        (  # a bad traceparent falls back to a good X-Cloud-Trace-Context
            {"traceparent": "00-nothex-00f067aa0ba902b7-01", "X-Cloud-Trace-Context": f"{TRACE}/5"},
            TraceContext(TRACE, "0000000000000005", False),
        ),
    ],
)
def test_a_valid_trace_header_is_read(headers: dict[str, str], expected: TraceContext) -> None:
    assert trace_context(headers) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Cloud-Trace-Context": "not-a-trace/1;o=1"},
        {"X-Cloud-Trace-Context": f"{TRACE[:-1]}/1;o=1"},  # 31 digits
        {"X-Cloud-Trace-Context": f'{TRACE}/1;o=1\n{{"severity": "EMERGENCY"}}'},
        {"X-Cloud-Trace-Context": f"{TRACE}/-1;o=1"},
        {"X-Cloud-Trace-Context": "0" * 32},  # the all-zero id names no trace
        {"traceparent": f"ff-{TRACE}-00f067aa0ba902b7-01"},  # version ff is invalid
        {"traceparent": f"00-{'0' * 32}-00f067aa0ba902b7-01"},
        {"traceparent": f"00-{TRACE}-{'0' * 16}-01"},
        {"traceparent": f"00-{TRACE.upper()}-00f067aa0ba902b7-01"},  # W3C ids are lowercase
    ],
)
def test_a_malformed_or_forged_trace_header_is_dropped(headers: dict[str, str]) -> None:
    assert trace_context(headers) is None


def record(message: str, *args: object, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("relaunch.x", level, "/src/x.py", 7, message, args, None)


def test_a_json_line_stays_one_object_whatever_the_message_holds() -> None:
    logs.begin(TraceContext(TRACE, None, True))
    logs.bind(delivery='d"1\n{"severity": "EMERGENCY"}', run_id="r-1")
    line = logs.JsonLines("proj").format(record("ref %s\u2028done\r\n", "evil\x1b[2J\ud800"))
    assert "\n" not in line and "\u2028" not in line
    entry = json.loads(line)
    assert entry["severity"] == "INFO" and entry["message"] == "ref evil\x1b[2J\ud800\u2028done\r\n"
    assert entry["delivery"] == 'd"1\n{"severity": "EMERGENCY"}' and entry["run_id"] == "r-1"
    assert entry["logging.googleapis.com/trace"] == f"projects/proj/traces/{TRACE}"
    assert "logging.googleapis.com/spanId" not in entry


def test_a_json_line_keeps_the_traceback_in_its_message_and_names_no_trace_without_a_project() -> None:
    logs.begin(TraceContext(TRACE, "00f067aa0ba902b7", True))
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.LogRecord("relaunch.x", logging.ERROR, "/src/x.py", 7, "failed", (), sys.exc_info())
    entry = json.loads(logs.JsonLines(None).format(failed))
    assert entry["severity"] == "ERROR" and entry["message"].startswith("failed\nTraceback")
    assert "ValueError: boom" in entry["message"] and not any(
        key.startswith("logging.googleapis.com/t") for key in entry
    )


def test_bind_refuses_a_field_it_does_not_know_and_cuts_a_long_value() -> None:
    logs.begin(None)
    with pytest.raises(TypeError, match="run"):
        logs.bind(run="r-1")
    logs.bind(delivery="x" * 1000)
    assert json.loads(logs.JsonLines(None).format(record("m")))["delivery"] == "x" * logs.MAX_FIELD


def test_a_new_request_forgets_what_the_last_one_bound() -> None:
    logs.begin(None)
    logs.bind(run_id="r-1", pipeline="digits")
    logs.begin(None)
    assert "run_id" not in json.loads(logs.JsonLines(None).format(record("m")))


def test_a_readable_line_escapes_bound_values_and_both_formats_redact_secrets() -> None:
    secret = "hooks-secret-value"
    logs.begin(None)
    logs.bind(delivery="d-1\x1b[2J\nforged", pipeline="digits")
    line = logs.ReadableLines([secret, "short"]).format(record("POST %s failed", f"https://x/{secret}"))
    assert line.endswith(
        "INFO relaunch.x: POST https://x/[redacted] failed [pipeline=digits delivery=d-1\\x1b[2J\\x0aforged]"
    )
    entry = json.loads(logs.JsonLines(None, [secret]).format(record("url %s", secret, level=logging.WARNING)))
    assert entry["message"] == "url [redacted]" and entry["severity"] == "WARNING"
    assert "short" in logs.ReadableLines(["short"]).format(record("short"))  # under MIN_REDACTED: left as it is


@pytest.mark.parametrize(
    ("level", "severity"),
    [(5, "DEFAULT"), (10, "DEBUG"), (25, "INFO"), (30, "WARNING"), (45, "ERROR"), (50, "CRITICAL")],
)
def test_python_levels_map_to_cloud_logging_severities(level: int, severity: str) -> None:
    assert logs.severity(level) == severity


def test_configure_replaces_its_own_and_plain_handlers_and_keeps_others() -> None:
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    plain, kept = logging.StreamHandler(), logging.NullHandler()
    root.handlers[:] = [plain, kept]
    try:
        logs.configure(structured=False)
        logs.configure(structured=True, project="p")
        assert kept in root.handlers and plain not in root.handlers and len(root.handlers) == 2
        assert isinstance(root.handlers[-1].formatter, logs.JsonLines) and root.level == logging.INFO
    finally:
        root.handlers[:] = saved
        root.setLevel(level)
