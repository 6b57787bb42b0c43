"""Fixtures: Google's Pub/Sub and Firestore emulators (one of each per session), a fresh project per test.

The emulators take seconds to start, so they are session-scoped; every test gets its own project id (both emulators
keep projects apart), and the SDKs find the emulators through PUBSUB_EMULATOR_HOST / FIRESTORE_EMULATOR_HOST, set
only while the test runs. Without gcloud, Java or the emulator component, the tests skip and say which is missing
(they fail instead where RELAUNCH_REQUIRE_EMULATORS=1, as in CI); an installed emulator that crashes always fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from relaunch.adapters.gcp.firestore_store import FirestoreRunStore
from relaunch.adapters.gcp.pubsub_bus import PubSubBus
from tests import emulators

STARTUP_TIMES: dict[str, float] = {}


def _session_emulator(kind: emulators.Kind) -> Iterator[emulators.Emulator]:
    emulator = emulators.started_or_skip(kind)
    STARTUP_TIMES[kind] = emulator.startup_s
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="session")
def pubsub_emulator() -> Iterator[emulators.Emulator]:
    """The Pub/Sub emulator on a free loopback port, for the whole session."""
    yield from _session_emulator("pubsub")


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[emulators.Emulator]:
    """The Firestore emulator on a free loopback port, for the whole session."""
    yield from _session_emulator("firestore")


@pytest.fixture
def project() -> str:
    """A project id of this test only (6-30 chars, a letter first): its topics and documents are its own."""
    return f"relaunch-t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(
    firestore_emulator: emulators.Emulator, project: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FirestoreRunStore]:
    """A FirestoreRunStore on the emulator, in this test's project (emptied afterwards)."""
    for name, value in firestore_emulator.env.items():
        monkeypatch.setenv(name, value)
    store = FirestoreRunStore(project)
    yield store
    store.close()
    emulators.reset_firestore(firestore_emulator, project)


@pytest.fixture
def bus(pubsub_emulator: emulators.Emulator, project: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[PubSubBus]:
    """A PubSubBus on the emulator, in this test's project."""
    for name, value in pubsub_emulator.env.items():
        monkeypatch.setenv(name, value)
    bus = PubSubBus(project)
    yield bus
    bus.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Report how long each emulator took to answer (a figure, never an assertion)."""
    for kind, seconds in sorted(STARTUP_TIMES.items()):
        terminalreporter.write_line(f"{kind} emulator answered {seconds:.2f}s after start")
