"""The suite's xdist groups hold: a module whose tests share a module-scoped fixture runs on one worker.

Seen in a clean-clone CI rehearsal: with pytest 9.2 (the newest, installed fresh), `--dist=loadgroup` silently stopped
grouping (pytest-xdist#1386: the nodeid suffix xdist routes on no longer takes effect), so the GCP demo's 80 s
fixture ran on three workers and the suite took 691 s instead of about 510. pyproject keeps pytest below 9.2; this
test fails if grouping stops again, whatever the cause.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def shared() -> str:
    return "one per module"


def test_a_module_with_a_shared_fixture_is_one_xdist_group(shared: str, request: pytest.FixtureRequest) -> None:
    if not request.config.getoption("loadgroup", default=False):
        pytest.skip("not running under xdist's --dist=loadgroup (-n 0 or -p no:xdist)")
    assert request.node.nodeid.endswith("@test_suite_groups.py"), request.node.nodeid
