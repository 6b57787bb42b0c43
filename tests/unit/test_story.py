"""What `relaunch up` prints as news: pure, from rows after a cursor (domain/story.py)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from relaunch.bootstrap import App
from relaunch.cli import up
from relaunch.cli.up import follow
from relaunch.domain.model import Delivery, TimelineEntry
from relaunch.domain.story import Cursor, DeliveryRow, EntryRow, news
from relaunch.settings import Settings


def clock(at: float) -> str:
    return f"t{at:g}"


def moved(seq: int, at: float, before: str, after: str, reason: str = "", run: str = "r-1") -> EntryRow:
    message = f"{before} -> {after}" + (f": {reason}" if reason else "")
    entry = TimelineEntry(at=at, kind="state", message=message, data={"from": before, "to": after})
    return EntryRow(seq, run, "digits", entry)


def test_each_delivery_and_each_state_change_is_one_line_in_time_order() -> None:
    delivery = DeliveryRow(7, Delivery(key="github:d-1", source="github", received_at=10.0, run_ids=["r-1"]))
    first = TimelineEntry(at=10.5, kind="state", message="received", data={"to": "received"})
    received = EntryRow(3, "r-1", "digits", first)
    note = EntryRow(4, "r-1", "digits", TimelineEntry(at=11.0, kind="github.status", message="pending"))
    lines, after = news(Cursor(), [delivery], [moved(5, 12.0, "received", "building"), received, note], clock)
    assert lines == [
        "t10  delivery github:d-1  github  accepted -> r-1",
        "t10.5  r-1  digits  received",
        "t12  r-1  digits  building",
    ]
    assert after == Cursor(delivery=7, entry=5)  # past the note too: it is never looked at again


def test_a_terminal_state_shows_its_reason_once_and_outside_text_stays_on_its_line() -> None:
    rows = [
        moved(1, 1.0, "training", "failed", "exited with code 3\n\x1b[31mfake"),
        moved(2, 2.0, "rolling_out", "promoted", "promoted"),
    ]
    lines, _ = news(Cursor(), [], rows, clock)
    assert lines[0].startswith("t1  r-1  digits  failed  exited with code 3")
    assert "\n" not in lines[0] and "\x1b" not in lines[0]
    assert lines[1] == "t2  r-1  digits  promoted"  # a reason that only repeats the state is left out


def test_what_the_cursor_has_passed_is_not_news_again() -> None:
    old = DeliveryRow(2, Delivery(key="k-old", source="github", received_at=1.0))
    new = DeliveryRow(3, Delivery(key="k-new", source="wandb", received_at=2.0, outcome="duplicate: r-1"))
    lines, after = news(Cursor(delivery=2, entry=9), [old, new], [moved(9, 3.0, "a", "b")], clock)
    assert lines == ["t2  delivery k-new  wandb  duplicate: r-1"]
    assert after == Cursor(delivery=3, entry=9)
    assert news(after, [], [], clock) == ([], after)


class FakeFeed:
    """A StorySource holding rows in memory, as the SQLite feed returns them."""

    def __init__(self) -> None:
        self.deliveries: list[DeliveryRow] = [DeliveryRow(1, Delivery(key="old", source="github", received_at=1.0))]
        self.entries: list[EntryRow] = []

    def head(self) -> Cursor:
        return Cursor(delivery=max(r.seq for r in self.deliveries), entry=max([0, *(r.seq for r in self.entries)]))

    def after(self, cursor: Cursor, limit: int = 500) -> tuple[list[DeliveryRow], list[EntryRow]]:
        return (
            [r for r in self.deliveries if r.seq > cursor.delivery][:limit],
            [r for r in self.entries if r.seq > cursor.entry][:limit],
        )


def test_up_follows_from_the_head_and_prints_each_new_line_once() -> None:
    feed, said, looks = FakeFeed(), [], [0]

    def stopped() -> bool:
        looks[0] += 1
        if looks[0] == 2:  # something happens between the first and the second look
            feed.deliveries.append(DeliveryRow(2, Delivery(key="new", source="github", received_at=5.0)))
            feed.entries.append(moved(1, 6.0, "received", "building"))
        return looks[0] > 3

    follow(feed, lambda line, **_: said.append(line), stopped)
    assert [line.split("  ", 1)[1] for line in said] == ["delivery new  github  accepted", "r-1  digits  building"]


def test_without_a_feed_up_says_so_once_and_stays_quiet() -> None:
    said: list[str] = []
    follow(None, lambda line, **_: said.append(line), lambda: True)
    assert len(said) == 1 and "relaunch runs" in said[0]


def test_up_shows_a_delivery_that_arrives_as_soon_as_the_stack_is_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stack announces itself (stack.json) at the end of its start; a client may push at once, before `up` has
    printed its banner. That push is part of the story: the follower's cursor is taken before the stack starts."""
    from relaunch.adapters.local.sqlite_store import SqliteRunStore

    monkeypatch.setenv("RELAUNCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RELAUNCH_PIPELINES_DIR", str(tmp_path / "pipelines"))
    (tmp_path / "pipelines").mkdir()
    said: list[str] = []

    class UpAtOnce:
        """A stack whose start is answered by a push at once (as a client polling stack.json sends one)."""

        def __init__(self, settings: Settings) -> None:
            self.settings, self.urls = settings, dict[str, str]()

        def start(self) -> None:
            store = App(self.settings).store
            assert isinstance(store, SqliteRunStore)
            store.record_delivery(Delivery(key="github:first", source="github", received_at=time.time()), [])

        def stop(self) -> None:
            pass

    def say(line: str, **_: object) -> None:
        said.append(line)
        if "github:first" in line:
            raise KeyboardInterrupt  # Ctrl-C once the line is out

    monkeypatch.setattr(up, "without_secrets_in_environment", lambda args: None)  # no re-exec, no umask here
    monkeypatch.setattr(up.logs, "configure", lambda **_: None)  # this test's logging stays as it is
    monkeypatch.setattr(up.bootstrap, "embedded_stack", lambda settings, functions: UpAtOnce(settings))
    monkeypatch.setattr(up, "_banner", lambda settings, urls: None)
    monkeypatch.setattr(up, "print", say, raising=False)
    looks = iter(range(200))

    def sleep(seconds: float) -> None:
        if next(looks, None) is None:
            raise KeyboardInterrupt  # 200 looks without the line: Ctrl-C, and the assertion below says what was shown

    monkeypatch.setattr(up, "time", SimpleNamespace(sleep=sleep))
    assert up.cmd_up(argparse.Namespace(port_base=None)) == 0
    assert any("delivery github:first" in line for line in said), said
