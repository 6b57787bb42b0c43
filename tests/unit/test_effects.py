"""The exactly-once keys are stored: each builder is pinned to the literal string the code wrote before the registry."""

from __future__ import annotations

import json

import pytest

from relaunch.domain import effects
from relaunch.domain.effects import Effect
from relaunch.domain.model import FunctionName, Source

RUN = "digits-0a1b2c3d4e"


@pytest.mark.parametrize(
    ("built", "literal"),
    [
        (Effect.APPROVAL, "approval"),
        (Effect.COST, "cost"),
        (Effect.FETCH, "fetch"),
        (Effect.NOTIFY_SKIP, "notify:skip"),
        (Effect.NOTIFY_APPROVAL, "notify:approval"),
        (Effect.NOTIFY_ROLLOUT_FAILED, "notify:rollout:failed"),
        (Effect.ROLLOUT_QUEUED, "rollout:queued"),
        (Effect.OVERRIDE, "override"),
        (Effect.ROLLBACK_ASKED, "rollback-asked"),
        (Effect.WANDB_SYNC, "wandb-sync"),
        (Effect.WANDB_SYNC_FAILED, "wandb-sync:failed"),
        (
            effects.button_press("github:72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            "press:github:72d3162e-cc78-11e3-81ab-4c9367dc0958",
        ),
        (effects.notify_status("build", "pending"), "notify:build:pending"),
        (effects.notify_status("gate", "failure"), "notify:gate:failure"),
        (effects.notify_rollout("set_traffic"), "notify:rollout:set_traffic"),
        (effects.rollout_wait("baking"), "rollout:wait:baking"),
        (effects.rollout_look(1700000012.5), "rollout:look:1700000012.500"),
        (effects.endpoint_operation("deploy", "v2"), "endpoint-op:deploy:v2"),
        (effects.alias_moved("production"), "alias:production"),
        (effects.build(RUN), "digits-0a1b2c3d4e:build"),
        (effects.evaluator_build(RUN), "digits-0a1b2c3d4e:build-evaluator"),
        (effects.job(RUN, "train"), "digits-0a1b2c3d4e:train"),
        (effects.job(RUN, "evaluate", 1), "digits-0a1b2c3d4e:evaluate"),
        (effects.job(RUN, "train", 2), "digits-0a1b2c3d4e:train:2"),
        (effects.job(RUN, "evaluate", 3), "digits-0a1b2c3d4e:evaluate:3"),
        (
            effects.github_delivery("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            "github:72d3162e-cc78-11e3-81ab-4c9367dc0958",
        ),
        (effects.pubsub_delivery(FunctionName.DRIFT_ALERT, "1234"), "pubsub:drift_alert:1234"),
        (effects.retrain_delivery("5150-1-digits"), "retrain:5150-1-digits"),
        (effects.wandb_delivery("ab" * 32), "wandb:" + "ab" * 32),
        (effects.replay_delivery("github:d-1", 1), "github:d-1#replay-1"),
        (effects.replay_delivery("github:d-1#replay-1", 2), "github:d-1#replay-2"),
    ],
)
def test_every_key_is_the_string_stored_before(built: str, literal: str) -> None:
    assert built == literal and str(built) == literal and f"{built}" == literal and json.dumps(built) == f'"{literal}"'


def test_a_replay_key_is_recognised_and_leads_back_to_its_original() -> None:
    assert effects.is_replay("pubsub:schedule_tick:9#replay-3") and not effects.is_replay("github:d-1")
    assert effects.replay_base("pubsub:schedule_tick:9#replay-3") == "pubsub:schedule_tick:9"


def test_names_are_the_wire_strings() -> None:
    assert [s.value for s in Source] == ["github", "wandb", "drift", "schedule", "retrain", "cloudbuild", "vertex"]
    names = "github_webhook wandb_webhook orchestrator drift_alert schedule_tick build_status vertex_job reconcile"
    assert [f.value for f in FunctionName] == names.split()
