"""Suite-wide: the tests that use gcloud's Pub/Sub and Firestore emulators run on one xdist worker, and Hypothesis
judges inputs, not the machine's speed.

Their race tests (many store instances contending for one document) measure the emulator's concurrency control,
and two workers each running an emulator on the machine's two cores turn its answers into timeouts and aborts that a
single emulator under the same test never gives. One group: one worker starts the emulators, once per session; the
other tests spread over the remaining workers.

Hypothesis's timing checks (a 200 ms deadline per example, "input generation is slow") measure how busy the cores
are, and with the workers sharing them a clean-clone CI run failed one on a generator that is fast alone. Speed is
measured in benchmarks/, never in tests: the suite's profile turns both off, and keeps every other health check.

The commits' Python environments (the local build's) are shared by every stack the suite starts, as
RELAUNCH_PYTHON_ENVS_DIR lets stacks share them: the digits example's environment is installed and byte-compiled once
per machine, not once per test home (about 13 s of CPU each). A test about building one sets its own folder.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

SHARED_ENVS = Path(tempfile.gettempdir()) / f"relaunch-test-envs-{os.getuid()}"
os.environ.setdefault("RELAUNCH_PYTHON_ENVS_DIR", str(SHARED_ENVS))
settings.register_profile("relaunch", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("relaunch")

TESTS = Path(__file__).parent
EMULATOR_USERS = (
    "contract/",
    "integration/gcp/",
    "integration/test_retrain_action.py",
    "e2e/test_demo_on_emulators.py",
    "e2e/test_demo_gcp_emulated.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        where = item.path.relative_to(TESTS).as_posix() if item.path.is_relative_to(TESTS) else ""
        if where.startswith(EMULATOR_USERS):
            item.add_marker(pytest.mark.xdist_group("gcloud-emulators"))
