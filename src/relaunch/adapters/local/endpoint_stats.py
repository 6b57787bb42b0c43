"""Health counting of the local endpoint server: each deployed version's calls, with time, outcome and latency.

The last `WINDOW_EVENTS` calls are kept, in memory (a restart starts a new window).
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

WINDOW_EVENTS = 50_000


@dataclass
class Stats:
    """Counters of one deployed version since the server started, and its latest calls for windowed health."""

    started_at: float = field(default_factory=time.time)
    requests: int = 0
    errors: int = 0
    events: deque[tuple[float, bool, float]] = field(default_factory=lambda: deque(maxlen=WINDOW_EVENTS))

    def record(self, failed: bool, latency_ms: float) -> None:
        self.requests += 1
        self.errors += failed
        self.events.append((time.time(), failed, latency_ms))

    def as_dict(self) -> dict[str, Any]:
        recent = [ms for _, _, ms in list(self.events)[-1000:]]
        p50 = statistics.median(recent) if recent else None
        return {"requests": self.requests, "errors": self.errors, "latency_ms_p50": p50}

    def window(self, version: str, since: float, now: float) -> dict[str, Any]:
        """Health figures of the calls at or after `since` (as far back as the kept calls reach)."""
        events = [e for e in self.events if e[0] >= since]
        start = max(since, self.started_at)
        if len(self.events) == self.events.maxlen and self.events[0][0] > start:
            start = self.events[0][0]  # older calls fell out of the bounded window
        errors = sum(1 for _, failed, _ in events if failed)
        latencies = sorted(ms for _, _, ms in events)
        return {
            "version": version,
            "requests": len(events),
            "errors": errors,
            "error_rate": errors / len(events) if events else 0.0,
            "p50_ms": _percentile(latencies, 0.50),
            "p95_ms": _percentile(latencies, 0.95),
            "window_s": max(0.0, now - start),
        }


def _percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list; None if it is empty."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]
