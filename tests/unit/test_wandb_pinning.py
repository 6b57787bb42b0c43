"""W&B events promote exactly the artifact they route on, at one pinned version: parser, plan and orchestrator."""

from __future__ import annotations

import json
from typing import Any

import pytest

from relaunch.domain.model import RunState
from relaunch.domain.ports import FetchedArtifact
from relaunch.domain.spec import PipelineSpec
from relaunch.service.ingest_events import plan_wandb
from relaunch.triggers.errors import TriggerError
from relaunch.triggers.wandb import WandbEvent, parse_wandb
from tests.fakes import FakeArtifacts
from tests.unit.test_orchestrator import GOOD, World

TOKEN = "tok"
WATCHED = {"entity_name": "relaunch-demo", "project_name": "digits", "artifact_collection_name": "digits-model"}
SPEC = PipelineSpec.model_validate(
    {
        "name": "digits",
        "source": {
            "repo": "relaunch-demo/digits",
            "wandb": {"entity": "relaunch-demo", "project": "digits", "collection": "digits-model"},
        },
        "train": {"command": ["python", "train.py"]},
        "evaluate": {"command": ["python", "evaluate.py"]},
        "endpoint": "digits-ep",
    }
)


def deliver(**fields: Any) -> WandbEvent:
    data = {"event_type": "CREATE_ARTIFACT", "artifact_version_string": "relaunch-demo/digits/digits-model:v3"}
    body = json.dumps({**data, **WATCHED, "alias": "", "event_author": "ada", **fields}).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    event = parse_wandb(headers, body, token=TOKEN, secret=None)
    assert isinstance(event, WandbEvent)
    return event


# --- the parser: what the routing fields name is what the version string names ----------------------------------


@pytest.mark.parametrize(
    ("version_string", "routing_field"),
    [
        ("attacker/other/evil-model:v0", "entity_name"),  # the attack as seen: every part differs
        ("attacker/digits/digits-model:v0", "entity_name"),
        ("relaunch-demo/other/digits-model:v0", "project_name"),
        ("relaunch-demo/digits/evil-model:v0", "artifact_collection_name"),
    ],
)
def test_a_version_string_outside_the_routed_collection_is_a_422_naming_the_field(
    version_string: str, routing_field: str
) -> None:
    with pytest.raises(TriggerError) as raised:
        deliver(artifact_version_string=version_string)
    assert raised.value.status == 422 and raised.value.field == "artifact_version_string"
    assert routing_field in raised.value.message and version_string.split(":")[0] in raised.value.message


def test_an_alias_event_may_not_name_another_alias_in_its_version_string() -> None:
    with pytest.raises(TriggerError) as raised:
        deliver(
            event_type="ADD_ARTIFACT_ALIAS",
            alias="candidate",
            artifact_version_string="relaunch-demo/digits/digits-model:production",
        )
    assert raised.value.status == 422 and raised.value.field == "artifact_version_string"
    assert "alias" in raised.value.message


@pytest.mark.parametrize("field", ["artifact_version_string", "entity_name", "alias", "event_author"])
def test_a_lone_surrogate_is_a_422_naming_the_field(field: str) -> None:
    value = {"artifact_version_string": "relaunch-demo/digits/digits-model:v\ud8003"}.get(field, "x\ud800")
    with pytest.raises(TriggerError) as raised:
        deliver(**{field: value})
    assert raised.value.status == 422 and raised.value.field == field


@pytest.mark.parametrize("ref", ["https://evil.example/x", "wandb-artifact://team/p/c:v1", "wandb-artifact://_id/"])
def test_an_artifact_reference_that_is_not_an_id_reference_is_a_422(ref: str) -> None:
    with pytest.raises(TriggerError) as raised:
        deliver(artifact_version=ref)
    assert raised.value.status == 422 and raised.value.field == "artifact_version"


def test_a_registry_link_names_the_registry_collection_it_was_linked_into() -> None:
    registry = {"entity_name": "acme-org", "project_name": "wandb-registry-model", "artifact_collection_name": "churn"}
    event = deliver(
        event_type="LINK_MODEL", artifact_version_string="acme-org/wandb-registry-model/churn:v1", **registry
    )
    assert (event.entity, event.project, event.collection, event.version) == (
        "acme-org",
        "wandb-registry-model",
        "churn",
        "v1",
    )
    with pytest.raises(TriggerError) as raised:  # the source artifact's own path: routing could not vouch for it
        deliver(event_type="LINK_MODEL", artifact_version_string="acme-ml/churn/churn-model:v4", **registry)
    assert raised.value.field == "artifact_version_string"


# --- the plan: the trigger carries the version the event pinned --------------------------------------------------


def test_the_plan_pins_the_concrete_version_or_the_id_reference_in_the_trigger() -> None:
    (concrete,) = plan_wandb(deliver(), {"digits": SPEC}, "k1", "production").runs
    assert concrete.trigger.artifact == "relaunch-demo/digits/digits-model:v3" and concrete.trigger.artifact_ref is None
    ref = "wandb-artifact://_id/QXJ0aWZhY3Q6NTE3ODg5ODg3"
    alias = deliver(
        event_type="ADD_ARTIFACT_ALIAS",
        alias="candidate",
        artifact_version_string="relaunch-demo/digits/digits-model:candidate",
        artifact_version=ref,
    )
    (pinned,) = plan_wandb(alias, {"digits": SPEC}, "k2", "production").runs
    assert pinned.trigger.artifact == "relaunch-demo/digits/digits-model:candidate"
    assert pinned.trigger.artifact_ref == ref


# --- the orchestrator: one resolution, at fetch; every later step uses the version fetched ----------------------


class LyingArtifacts(FakeArtifacts):
    """An adapter that fetches another artifact than the one asked for."""

    def fetch(self, ref: str, dest: str) -> FetchedArtifact:
        self.fetched.append((ref, dest))
        return FetchedArtifact(ref="attacker/other/evil-model:v0")


def wandb_world(artifacts: FakeArtifacts) -> World:
    w = World()
    w.artifacts = artifacts
    return w


def test_an_alias_resolved_at_fetch_is_the_version_evaluated_and_promoted_even_if_it_moves() -> None:
    artifacts = FakeArtifacts({"acme/digits/model:v2": {}, "acme/digits/model:v3": {}})
    artifacts.aliases["candidate"] = "acme/digits/model:v2"
    w = wandb_world(artifacts)
    run = w.new_run(kind="wandb", sha=None, ref="refs/heads/main", artifact="acme/digits/model:candidate")
    started = w.start(run)
    assert started.state is RunState.EVALUATING and started.trigger.artifact == "acme/digits/model:v2"
    assert any("candidate" in e.message and "v2" in e.message for e in w.store.timeline(run.id))
    artifacts.aliases["candidate"] = "acme/digits/model:v3"  # someone moves the alias while v2 is evaluated
    done = w.evaluate(run, GOOD)
    assert done.state is RunState.PROMOTED and artifacts.aliases["production"] == "acme/digits/model:v2"
    assert [ref for ref, _ in artifacts.fetched] == ["acme/digits/model:candidate"]  # resolved once, never again


def test_an_adapter_returning_another_artifact_is_refused_and_nothing_is_evaluated_or_aliased() -> None:
    w = wandb_world(LyingArtifacts())
    run = w.new_run(kind="wandb", sha=None, ref="refs/heads/main", artifact="relaunch-demo/digits/digits-model:v3")
    done = w.start(run)
    assert done.state is RunState.FAILED and "attacker/other/evil-model:v0" in done.reason
    assert "relaunch-demo/digits/digits-model" in done.reason
    assert w.backend.submitted == {} and w.artifacts.aliases == {}


def test_a_concrete_version_fetched_as_another_version_is_refused() -> None:
    artifacts = FakeArtifacts({"acme/digits/model:v2": {}})
    artifacts.aliases["v3"] = "acme/digits/model:v2"  # an adapter that resolves v3 to v2
    w = wandb_world(artifacts)
    run = w.new_run(kind="wandb", sha=None, ref="refs/heads/main", artifact="acme/digits/model:v3")
    done = w.start(run)
    assert done.state is RunState.FAILED and "acme/digits/model:v2" in done.reason and w.backend.submitted == {}


def test_an_event_pinned_by_id_refuses_an_alias_that_moved_before_the_fetch() -> None:
    class Ids(FakeArtifacts):
        def fetch(self, ref: str, dest: str) -> FetchedArtifact:
            fetched = super().fetch(ref, dest)
            return FetchedArtifact(ref=fetched.ref, artifact_id="QXJ0aWZhY3Q6Mw==")  # the version now aliased

    artifacts = Ids({"acme/digits/model:v3": {}})
    artifacts.aliases["candidate"] = "acme/digits/model:v3"
    w = wandb_world(artifacts)
    pinned = "wandb-artifact://_id/QXJ0aWZhY3Q6Mg=="  # the event named another version
    run = w.new_run(kind="wandb", sha=None, artifact="acme/digits/model:candidate", artifact_ref=pinned)
    done = w.start(run)
    assert done.state is RunState.FAILED and "QXJ0aWZhY3Q6Mg" in done.reason and w.backend.submitted == {}
    same = w.new_run(
        2, kind="wandb", sha=None, artifact="acme/digits/model:candidate", artifact_ref=pinned[:-4] + "Mw=="
    )
    assert w.start(same).state is RunState.EVALUATING


def test_the_alias_is_never_moved_from_a_ref_that_names_no_concrete_version() -> None:
    artifacts = FakeArtifacts({"acme/digits/model:v2": {}})
    w = wandb_world(artifacts)
    run = w.new_run(kind="wandb", sha=None, artifact="acme/digits/model:v2")
    w.start(run)
    stale = w.store.runs[run.id]  # a run recorded before pinning existed: its trigger still names the alias
    w.store.runs[run.id] = stale.model_copy(
        update={"trigger": stale.trigger.model_copy(update={"artifact": "acme/digits/model:candidate"})}
    )
    done = w.evaluate(run, GOOD)
    assert done.state is RunState.PROMOTED and "production" not in artifacts.aliases
    assert any(e.kind == "warning" and "alias not moved" in e.message for e in w.store.timeline(run.id))
