"""The trace a request belongs to, read from its headers (W3C `traceparent`, or Google's `X-Cloud-Trace-Context`).

Google Cloud's front ends send both on requests to Cloud Run and Cloud Functions; `traceparent` is the standard one
and wins when both are valid (https://cloud.google.com/trace/docs/trace-context). Anyone can send either header, so
a value is taken only when it has exactly the documented shape: a hex trace id, a span id that fits in 64 bits.
A bad header is dropped, never refused: it only links log lines, and a delivery is not wrong for lacking one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# version-traceid-parentid-flags (https://www.w3.org/TR/trace-context/#traceparent-header-field-values)
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
# TRACE_ID/SPAN_ID;o=OPTIONS, the span id decimal, both parts after the trace id optional
_CLOUD_TRACE = re.compile(r"([0-9a-fA-F]{32})(?:/([0-9]{1,20}))?(?:;o=([01]))?")
_NO_ID = re.compile(r"0+")


@dataclass(frozen=True)
class TraceContext:
    """A trace id (32 lowercase hex digits), the caller's span (16 hex digits, if any) and whether it is sampled."""

    trace_id: str
    span_id: str | None
    sampled: bool


def trace_context(headers: Mapping[str, str]) -> TraceContext | None:
    """The request's trace from its headers (case-insensitive names), or None when neither header is valid."""
    lowered = {name.lower(): value for name, value in headers.items()}
    return _traceparent(lowered.get("traceparent", "")) or _cloud_trace(lowered.get("x-cloud-trace-context", ""))


def _traceparent(value: str) -> TraceContext | None:
    match = _TRACEPARENT.fullmatch(value.strip())
    if match is None:
        return None
    version, trace_id, span_id, flags = match.groups()
    if version == "ff" or _NO_ID.fullmatch(trace_id) or _NO_ID.fullmatch(span_id):  # all invalid per the spec
        return None
    return TraceContext(trace_id, span_id, sampled=bool(int(flags, 16) & 1))


def _cloud_trace(value: str) -> TraceContext | None:
    match = _CLOUD_TRACE.fullmatch(value.strip())
    if match is None or _NO_ID.fullmatch(match.group(1)):
        return None
    trace_id, span, options = match.groups()
    span_number = int(span) if span else 0
    # Cloud Logging wants the span as 16 hex digits; a span 0 or one past 64 bits names no span.
    span_id = f"{span_number:016x}" if 0 < span_number < 2**64 else None
    return TraceContext(trace_id.lower(), span_id, sampled=options == "1")
