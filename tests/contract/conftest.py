"""The store each contract test runs on: the fake the unit tests trust, SQLite in a temporary folder, and Firestore on
Google's emulator (the session's, as tests/integration/gcp starts it; the Firestore case skips, saying why, where the
emulator cannot run). A test asks for `store` and runs once per implementation.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from relaunch.adapters.gcp.firestore_store import FirestoreRunStore
from relaunch.adapters.local.sqlite_store import SqliteRunStore
from relaunch.domain.ports import RunStore
from tests import emulators
from tests.fakes import FakeStore
from tests.integration.gcp.conftest import firestore_emulator  # noqa: F401 (a fixture: the emulator of the session)

IMPLEMENTATIONS = ["fake", "sqlite", "firestore"]


@pytest.fixture(params=IMPLEMENTATIONS)
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunStore]:
    """A fresh, empty store of one implementation (the emulator starts only for the Firestore case)."""
    if request.param == "fake":
        yield FakeStore()
    elif request.param == "sqlite":
        sqlite = SqliteRunStore(tmp_path / "relaunch.db")
        yield sqlite
        sqlite.close()
    else:
        yield from _firestore(request.getfixturevalue("firestore_emulator"), monkeypatch)


def _firestore(emulator: emulators.Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunStore]:
    """A FirestoreRunStore in a project of this test only, emptied afterwards."""
    for name, value in emulator.env.items():
        monkeypatch.setenv(name, value)
    project = f"relaunch-c-{uuid.uuid4().hex[:12]}"
    firestore = FirestoreRunStore(project)
    yield firestore
    firestore.close()
    emulators.reset_firestore(emulator, project)
