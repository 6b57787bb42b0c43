"""What `relaunch up` prints as things happen: one line per delivery and per state change of a run.

Pure: the store hands over what was written after a cursor (deliveries and timeline entries, each with its place in
the store's own order); `news` decides which of them are new lines of the story, in order, and where the next look
starts. Outside text (delivery keys, reasons) is made safe for a terminal here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from relaunch.domain.model import Delivery, TimelineEntry
from relaunch.textsafe import safe_line

MAX_REASON = 160  # a reason is for a glance; `relaunch runs show` has the whole of it


@dataclass(frozen=True)
class Cursor:
    """Where the last look ended: the last delivery's and the last timeline entry's place in the store's order."""

    delivery: int = 0
    entry: int = 0


@dataclass(frozen=True)
class DeliveryRow:
    """A delivery and its place in the inbox's order of writing."""

    seq: int
    delivery: Delivery


@dataclass(frozen=True)
class EntryRow:
    """A timeline entry, the run and pipeline it belongs to, and its place in the timeline's order of writing."""

    seq: int
    run_id: str
    pipeline: str
    entry: TimelineEntry


class StorySource(Protocol):
    """Where the story is read from: what was written after a cursor (the embedded store's StoryFeed)."""

    def head(self) -> Cursor:
        """Where the story stands now."""

    def after(self, cursor: Cursor, limit: int = 500) -> tuple[list[DeliveryRow], list[EntryRow]]:
        """Deliveries and timeline entries written after `cursor`, oldest first, at most `limit` of each."""


def news(
    cursor: Cursor,
    deliveries: Sequence[DeliveryRow],
    entries: Sequence[EntryRow],
    clock: Callable[[float], str] | None = None,
) -> tuple[list[str], Cursor]:
    """The lines for what came after `cursor` (each delivery, each state change; other entries are skipped) in time
    order, and the cursor after them. Rows at or before the cursor are not news, whatever order they came in."""
    show = clock or _clock
    fresh_deliveries = [row for row in deliveries if row.seq > cursor.delivery]
    fresh_entries = [row for row in entries if row.seq > cursor.entry]
    timed = [(row.delivery.received_at, 0, row.seq, delivery_line(row, show)) for row in fresh_deliveries]
    timed += [(row.entry.at, 1, row.seq, state_line(row, show)) for row in fresh_entries if row.entry.kind == "state"]
    after = Cursor(
        delivery=max([cursor.delivery, *(row.seq for row in fresh_deliveries)]),
        entry=max([cursor.entry, *(row.seq for row in fresh_entries)]),
    )
    return [line for *_, line in sorted(timed)], after


def delivery_line(row: DeliveryRow, clock: Callable[[float], str]) -> str:
    """`HH:MM:SS  delivery KEY  SOURCE  OUTCOME -> RUN, RUN`."""
    d = row.delivery
    runs = f" -> {', '.join(safe_line(r) for r in d.run_ids)}" if d.run_ids else ""
    return f"{clock(d.received_at)}  delivery {safe_line(d.key)}  {safe_line(d.source)}  {safe_line(d.outcome)}{runs}"


def state_line(row: EntryRow, clock: Callable[[float], str]) -> str:
    """`HH:MM:SS  RUN  PIPELINE  STATE  REASON` (the reason only when the move gave one)."""
    entry = row.entry
    state = str(entry.data.get("to") or entry.message)
    line = f"{clock(entry.at)}  {safe_line(row.run_id)}  {safe_line(row.pipeline)}  {safe_line(state)}"
    reason = reason_of(entry)
    return f"{line}  {safe_line(reason[:MAX_REASON])}" if reason and reason != state else line


def reason_of(entry: TimelineEntry) -> str:
    """The reason a state entry gives after its `from -> to` (states.transition writes `from -> to: reason`)."""
    moved = f"{entry.data.get('from')} -> {entry.data.get('to')}"
    if entry.message.startswith(f"{moved}: "):
        return entry.message[len(moved) + 2 :]
    return ""


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))
