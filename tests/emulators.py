"""Google's official Pub/Sub and Firestore emulators for tests: the launcher is relaunch's own
(relaunch.adapters.local.gcloud_emulators, which the gcp-emulated demo uses too); here, what only tests need.

A test skips, saying why, when the emulator is not installed, and fails instead where RELAUNCH_REQUIRE_EMULATORS=1
(as in CI); an installed emulator that crashes always fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from relaunch.adapters.local.gcloud_emulators import (
    Emulator,
    EmulatorCrashed,
    EmulatorUnavailable,
    Kind,
    reset_firestore,
    start,
    unavailable_reason,
)

__all__ = [
    "Emulator",
    "EmulatorCrashed",
    "EmulatorUnavailable",
    "Kind",
    "REQUIRED",
    "reset_firestore",
    "running",
    "start",
    "started_or_skip",
    "skip_unless_installed",
    "unavailable_reason",
]

REQUIRED = "RELAUNCH_REQUIRE_EMULATORS"  # set to 1 (CI does): an emulator that is not installed fails the test


def started_or_skip(kind: Kind, **options: Any) -> Emulator:
    """The emulator, started; a test skips (saying why) only when it is not installed and not required here."""
    try:
        return start(kind, **options)
    except EmulatorUnavailable as exc:
        if os.environ.get(REQUIRED) == "1":
            pytest.fail(f"{kind} emulator unavailable but {REQUIRED}=1: {exc}")
        pytest.skip(f"{kind} emulator unavailable: {exc}")


def skip_unless_installed(kind: Kind) -> None:
    """Skip (or fail, where required) as started_or_skip would, without starting the emulator: for a test whose code
    under test starts its own (starting one only to find out costs a Firestore emulator's 5 to 10 s)."""
    reason = unavailable_reason(kind)
    if reason is not None and os.environ.get(REQUIRED) == "1":
        pytest.fail(f"{kind} emulator unavailable but {REQUIRED}=1: {reason}")
    if reason is not None:
        pytest.skip(f"{kind} emulator unavailable: {reason}")


@contextmanager
def running(kind: Kind, *, project: str = "test-project", timeout: float = 60.0) -> Iterator[Emulator]:
    """A started emulator (or a skip, see started_or_skip), stopped (process group and all) on exit."""
    emulator = started_or_skip(kind, project=project, timeout=timeout)
    try:
        yield emulator
    finally:
        emulator.stop()
