"""Publishes the `look_at_rollout` commands a waiting rollout asks for: each plans the run again at its time.

The local bus holds a message until its `not_before`, however far ahead (`bus_delays`). Pub/Sub delivers at once,
and the orchestrator function holds an early look at most LOOK_HOLD_S: there a look further ahead is refused (False)
and asked for again by a later plan, which the reconcile tick (every minute on GCP) guarantees.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from relaunch.domain.commands import LOOK_HOLD_S, LookAtRollout
from relaunch.domain.ports import Bus


class RolloutLooks:
    """`looks(run_id, at)`: a look at the run's rollout due at `at` is on the bus (True), or too far ahead (False).

    `bus` is called on the first look: a process that never waits on a rollout builds no bus client for it.
    """

    def __init__(
        self, bus: Callable[[], Bus], topic: str, *, bus_delays: bool, clock: Callable[[], float] = time.time
    ) -> None:
        self.bus, self.topic, self.clock = bus, topic, clock
        self.horizon_s = None if bus_delays else LOOK_HOLD_S

    def __call__(self, run_id: str, at: float) -> bool:
        if self.horizon_s is not None and at - self.clock() > self.horizon_s:
            return False
        command = LookAtRollout(run_id=run_id, not_before=at)
        self.bus().publish(self.topic, command.model_dump(), {"run_id": run_id}, not_before=at)
        return True
