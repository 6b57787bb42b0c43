"""A run that registered a version keeps it on its record however its rollout ends (issue 17: a rolled-back run
showed model `-` although its version was registered)."""

from __future__ import annotations

from relaunch.domain.model import EndpointHealth, RunState
from tests.unit.test_rollout_step import CANARY, World, promoted_v1


def test_a_canary_rolled_back_keeps_the_version_it_registered() -> None:
    w = World()
    promoted_v1(w)
    run = w.gated(2)
    w.roll(run, CANARY)
    w.endpoint.healths["v2"] = EndpointHealth(version="v2", requests=12, errors=6, error_rate=0.5)
    w.now += 5
    done = w.roll(run, CANARY)
    assert done is not None and done.state is RunState.ROLLED_BACK
    assert done.model_version == "v2" and w.registry.champions["digits"] == "v1"
