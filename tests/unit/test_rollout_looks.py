"""A rollout's wait ends at a time its plan knows: the step schedules a look at the run then, once, instead of
leaving the decision to the next reconcile tick. Pub/Sub cannot delay a message, so there the look is published only
once its time is near and the orchestrator function holds it until then."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import pytest

from relaunch.adapters.gcp.pubsub_bus import NOT_BEFORE, PubSubBus
from relaunch.domain.commands import LOOK_HOLD_S, LookAtRollout, StartRun, hold_s, parse_command
from relaunch.domain.health import HealthLimits
from relaunch.domain.model import EndpointHealth, RunState
from relaunch.domain.rollout import CanaryRollout
from relaunch.service.rollout_looks import RolloutLooks
from tests.fakes import FakeBus
from tests.unit.test_rollout_step import DIRECT, World, promoted_v1

CANARY = DIRECT.model_copy(update={"rollout": CanaryRollout(bake_s=12, max_bake_s=48, health=HealthLimits())})
QUIET = EndpointHealth(version="v2", requests=0, errors=0, error_rate=0.0)


class Looks:
    """Records the looks asked for; `far` refuses those further ahead than it, as the Pub/Sub bus does."""

    def __init__(self, world: World, far: float | None = None) -> None:
        self.world, self.far, self.asked, self.taken = world, far, [], []  # type: ignore[var-annotated]

    def __call__(self, run_id: str, at: float) -> bool:
        self.asked.append((run_id, at))
        if self.far is not None and at - self.world.now > self.far:
            return False
        self.taken.append((run_id, at))
        return True


def test_a_bake_schedules_one_look_at_its_own_deadline_then_one_at_the_hold_max() -> None:
    w = World()
    looks = w.step.look_at = Looks(w)
    promoted_v1(w)
    run = w.gated(2)
    for _ in range(3):  # a reconcile tick re-plans: no second look at the same time
        assert w.roll(run, CANARY) is None
    rollout = w.store.get_run(run.id).rollout  # type: ignore[union-attr]
    assert rollout is not None and looks.taken == [(run.id, rollout.phase_started_at + 12)]
    waiting = [e for e in w.store.timeline(run.id) if e.message.startswith("waiting: baking")]
    assert [e.data["until"] for e in waiting] == [rollout.phase_started_at + 12]
    w.endpoint.healths["v2"] = QUIET
    w.now = rollout.phase_started_at + 12  # the look arrives: the bake ended without traffic, held
    assert w.roll(run, CANARY) is None
    assert looks.taken[-1] == (run.id, rollout.phase_started_at + 48)
    w.now = rollout.phase_started_at + 48
    done = w.roll(run, CANARY)
    assert done is not None and done.state is RunState.ROLLED_BACK and len(looks.taken) == 2


def test_a_look_too_far_ahead_for_the_bus_is_asked_again_by_a_later_plan() -> None:
    w = World()
    looks = w.step.look_at = Looks(w, far=5)
    promoted_v1(w)
    run = w.gated(2)
    assert w.roll(run, CANARY) is None and looks.taken == []  # 12 s ahead: not yet
    w.now += 8  # the next reconcile tick: 4 s ahead
    assert w.roll(run, CANARY) is None and len(looks.taken) == 1 and len(looks.asked) == 2


def test_the_publisher_sends_a_look_command_due_at_its_time() -> None:
    bus, now = FakeBus(), [1000.0]
    looks = RolloutLooks(lambda: bus, "relaunch-commands", bus_delays=True, clock=lambda: now[0])
    assert looks("digits-2", 1600.0)
    [(topic, data, attributes)] = bus.messages
    assert topic == "relaunch-commands" and attributes == {"run_id": "digits-2"} and bus.not_before == [1600.0]
    assert parse_command(data) == LookAtRollout(run_id="digits-2", not_before=1600.0)
    near = RolloutLooks(lambda: bus, "relaunch-commands", bus_delays=False, clock=lambda: now[0])
    assert not near("digits-2", 1000.0 + LOOK_HOLD_S + 1) and len(bus.messages) == 1
    assert near("digits-2", 1000.0 + LOOK_HOLD_S) and len(bus.messages) == 2


def test_an_early_look_is_held_until_its_time_at_most_the_hold_bound() -> None:
    look = LookAtRollout(run_id="r", not_before=1012.5)
    assert hold_s(look, 1000.0) == 12.5
    assert hold_s(look, 1013.0) == 0.0
    assert hold_s(look, 1012.5 - 10 * LOOK_HOLD_S) == LOOK_HOLD_S
    assert hold_s(StartRun(run_id="r"), 0.0) == 0.0
    with pytest.raises(ValueError):
        parse_command({"type": "look_at_rollout", "run_id": "r", "not_before": "nan"})


class _Publisher:
    """The PublisherClient calls PubSubBus makes, recorded."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def topic_path(self, project: str, topic: str) -> str:
        return f"projects/{project}/topics/{topic}"

    def publish(self, path: str, payload: bytes, **kwargs: Any) -> Future[str]:
        self.sent.append(kwargs)
        done: Future[str] = Future()
        done.set_result("1")
        return done


def test_pubsub_cannot_delay_so_it_says_when_in_an_attribute() -> None:
    client = _Publisher()
    bus = PubSubBus("p", client=client)
    bus.publish("relaunch-commands", {"type": "look_at_rollout"}, {"run_id": "r"}, not_before=1012.5)
    bus.publish("relaunch-commands", {"type": "start_run"}, {"run_id": "r"})
    assert client.sent[0][NOT_BEFORE] == "1012.500" and client.sent[0]["run_id"] == "r"
    assert NOT_BEFORE not in client.sent[1]
