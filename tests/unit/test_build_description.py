"""A build's pending status names what it builds: a commit by its short SHA, a ref-only run by its whole ref."""

from __future__ import annotations

from tests.unit.test_orchestrator import World


def test_a_ref_only_run_builds_its_whole_ref_not_seven_characters_of_it() -> None:
    w = World()
    run = w.new_run(1, kind="manual", sha=None, ref="refs/heads/main")
    w.start(run)
    [building] = [n for n in w.notifier.sent if n.stage == "build" and n.state == "pending"]
    assert building.description == "Building refs/heads/main"


def test_a_commit_run_builds_its_short_sha() -> None:
    w = World()
    w.start(w.new_run(7))
    [building] = [n for n in w.notifier.sent if n.stage == "build" and n.state == "pending"]
    assert building.description == "Building 0000000"  # the first 7 of its 40 digits
