"""How a relaunch process writes its log: one place for the handler, the format and the fields every line carries.

On Google Cloud, Cloud Run (which runs the functions) reads each stdout line that is one JSON object as a structured
LogEntry: `severity`, `message`, `time`, `logging.googleapis.com/trace` / `spanId` / `trace_sampled` and
`sourceLocation` become the entry's own fields, the rest its jsonPayload
(https://cloud.google.com/logging/docs/structured-logging). Elsewhere a line is for a person reading a file.

Modules keep calling `log.info("...", args)`. What a line is about (its run, pipeline, delivery, trace) is bound once
per request (`begin`, `bind`) and added here, so no module builds a record itself. Values are written by
`json.dumps`: a newline or a quote in outside text stays inside its string and cannot start a line or a field.
Configured secret values are replaced wherever they appear, tracebacks included (an HTTP client's error quotes its
URL, and a Slack webhook's URL is its secret).
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from relaunch.textsafe import safe_line
from relaunch.triggers.trace import TraceContext

FIELDS = ("run_id", "pipeline", "delivery")  # what a line may be about, in the order a readable line shows them
MAX_FIELD = 200  # a delivery id is chosen by its sender: a longer one is cut, not carried into every line
REDACTED = "[redacted]"
# A shorter value would blank every occurrence of a common string (a secret "s" would eat every s of every line),
# and a secret that short is guessed sooner than read from a log.
MIN_REDACTED = 8
TRACE = "logging.googleapis.com/trace"
SPAN = "logging.googleapis.com/spanId"
SAMPLED = "logging.googleapis.com/trace_sampled"
SOURCE = "logging.googleapis.com/sourceLocation"
READABLE = "%(asctime)s %(levelname)s %(name)s%(about_run)s: %(message)s"

_fields: ContextVar[Mapping[str, str] | None] = ContextVar("relaunch_log_fields", default=None)
_trace: ContextVar[TraceContext | None] = ContextVar("relaunch_log_trace", default=None)


def begin(trace: TraceContext | None) -> None:
    """A new request: its trace, and none of the fields an earlier request bound (servers reuse their threads)."""
    _fields.set({})
    _trace.set(trace)


def bind(**fields: str | None) -> None:
    """Name what the rest of this request is about; every later line carries it (None or empty: left as it is)."""
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:  # a misspelt field would silently log nothing
        raise TypeError(f"no log field {', '.join(unknown)} (fields: {', '.join(FIELDS)})")
    given = {name: value[:MAX_FIELD] for name, value in fields.items() if value}
    _fields.set({**bound(), **given})


def bound() -> Mapping[str, str]:
    """The fields bound so far in this request."""
    return _fields.get() or {}


class _Redacting(logging.Formatter):
    """A formatter that replaces configured secret values, longest first (one may contain another)."""

    def __init__(self, secrets: Iterable[str], fmt: str | None = None) -> None:
        super().__init__(fmt)
        self._secrets = sorted({s for s in secrets if len(s) >= MIN_REDACTED}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


class JsonLines(_Redacting):
    """One JSON object per line, as Cloud Logging reads it; the trace is named in `project` (none without one)."""

    def __init__(self, project: str | None, secrets: Iterable[str] = ()) -> None:
        super().__init__(secrets)
        self._project = project

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "severity": severity(record.levelno),
            "message": self.redact(self._text(record)),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "logger": record.name,
            SOURCE: {"file": record.pathname, "line": str(record.lineno), "function": record.funcName},
        }
        entry.update({name: self.redact(value) for name, value in bound().items()})
        trace = _trace.get()
        if trace is not None and self._project:
            entry[TRACE] = f"projects/{self._project}/traces/{trace.trace_id}"
            entry[SAMPLED] = trace.sampled
            if trace.span_id:
                entry[SPAN] = trace.span_id
        return json.dumps(entry)  # ASCII: U+2028 and lone surrogates travel as escapes too

    def _text(self, record: logging.LogRecord) -> str:
        """The message with its traceback, in one string: one entry, which Error Reporting can read."""
        text = record.getMessage()
        if record.exc_info:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        if record.stack_info:
            text = f"{text}\n{self.formatStack(record.stack_info)}"
        return text


class ReadableLines(_Redacting):
    """`time LEVEL logger run=<id>: message [pipeline=… delivery=…]`, the bound values made safe for a terminal: the
    run id leads, so `grep run=<id>` finds a run's whole story across the stack's logs."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__(secrets, READABLE)

    def format(self, record: logging.LogRecord) -> str:
        fields = bound()
        run = fields.get("run_id")
        record.about_run = f" run={safe_line(run)}" if run else ""
        line = super().format(record)
        about = " ".join(f"{name}={safe_line(fields[name])}" for name in FIELDS[1:] if name in fields)
        return self.redact(f"{line} [{about}]" if about else line)


def severity(level: int) -> str:
    """Cloud Logging's LogSeverity for a Python level (a custom level counts as the standard one below it)."""
    for floor, name in ((50, "CRITICAL"), (40, "ERROR"), (30, "WARNING"), (20, "INFO"), (10, "DEBUG")):
        if level >= floor:
            return name
    return "DEFAULT"


class _Console(logging.StreamHandler[TextIO]):
    """Writes to sys.stdout or sys.stderr as it is for each line: functions-framework swaps them per request when
    it adds execution ids, and a test's capture swaps them per test."""

    def __init__(self, stream_name: str) -> None:
        super().__init__()
        self._stream_name = stream_name

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = getattr(sys, self._stream_name)
        super().emit(record)


class _File(logging.FileHandler):
    """A log file of the embedded stack, private to its user like every file of the stack's home."""

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return open(fd, "a", encoding=self.encoding or "utf-8", errors=self.errors)  # noqa: SIM115 (the handler's)


def configure(
    *, structured: bool, project: str | None = None, secrets: Iterable[str] = (), path: Path | None = None
) -> None:
    """This process's root logger, at INFO: JSON lines on stdout (`structured`), or readable lines on stderr or, with
    `path`, appended to that file (the `relaunch up` process: its terminal is for the story, not for log lines).

    Idempotent. Replaces an earlier call's handler and any plain StreamHandler (basicConfig's, functions-framework's
    own when LOG_EXECUTION_ID is set), which would print every line a second time; other handlers stay.
    """
    handler: logging.Handler = _Console("stdout") if structured else _Console("stderr")
    if path is not None and not structured:
        handler = _File(path, encoding="utf-8")
    handler.setFormatter(JsonLines(project, secrets) if structured else ReadableLines(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, _Console | _File) or type(old) is logging.StreamHandler:
            root.removeHandler(old)
            old.close()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(path is not None)  # a library's warning belongs in the file, not amid the story
