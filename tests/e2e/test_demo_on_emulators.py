"""The demo scenario with the bus on the Pub/Sub emulator and the store on the Firestore emulator.

Training, registry and endpoint stay local. The stack creates the topics and push subscriptions to its functions, the
emulator pushes each command to them, and runs live in Firestore; the outcomes must be those of the local scenario,
so the local scenario's tests run again here against this module's `outcome` (all but `relaunch runs`, whose CLI
still looks for the SQLite file before asking the store).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from relaunch.adapters.gcp.firestore_store import FirestoreRunStore
from relaunch.bootstrap import App
from relaunch.demo import DemoOutcome, scenario
from relaunch.settings import Settings
from tests import emulators
from tests.e2e.test_demo_scenario import (  # noqa: F401  (collected here, on this module's `outcome`)
    test_endpoint_keeps_serving_the_champion,
    test_good_commit_is_promoted_through_every_state,
    test_nothing_is_left_running,
    test_runs_lists_both_runs_and_shows_a_timeline,
    test_statuses_and_check_run_are_recorded_as_github_would_receive_them,
    test_the_narration_is_readable,
    test_worse_commit_is_rejected_with_its_reasons,
)

pytestmark = pytest.mark.e2e


def _started(kind: emulators.Kind, project: str) -> emulators.Emulator:
    return emulators.started_or_skip(kind, project=project)


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoOutcome, App, str]]:
    """The scenario's outcome; the environment stays pointed at the emulators until the module's tests are done."""
    project = f"relaunch-e2e-{uuid.uuid4().hex[:12]}"
    pubsub = _started("pubsub", project)
    try:
        firestore = _started("firestore", project)
        try:
            with pytest.MonkeyPatch.context() as env:
                for name, value in {**pubsub.env, **firestore.env}.items():
                    env.setenv(name, value)
                env.setenv("RELAUNCH_BUS", "pubsub")
                env.setenv("RELAUNCH_STORE", "firestore")
                env.setenv("RELAUNCH_GCP_PROJECT", project)
                home = tmp_path_factory.mktemp("home")
                out = io.StringIO()
                result = scenario(home, out)
                app = App(Settings(home=home))
                yield result, app, out.getvalue()
                assert isinstance(app.store, FirestoreRunStore)
                app.store.close()
        finally:
            firestore.stop()
    finally:
        pubsub.stop()


def test_commands_went_through_pubsub_and_runs_live_in_firestore(outcome) -> None:  # type: ignore[no-untyped-def]
    result, app, _ = outcome
    from relaunch.adapters.gcp.firestore_store import FirestoreRunStore

    assert isinstance(app.store, FirestoreRunStore)
    stored = app.store.get_run(result.promoted.id)
    assert stored is not None and stored.state is result.promoted.state
    home = Path(app.settings.home)
    assert not app.settings.bus_path.exists() and not app.settings.store_path.exists(), sorted(home.iterdir())
