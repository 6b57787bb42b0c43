"""W&B, drift, scheduler and Cloud Build paths of the service layer, the dead-letter path and replays, with fakes."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from relaunch.domain.model import Delivery, RunState
from relaunch.domain.spec import DriftPolicy, EvaluateSpec, JobSpec, PipelineSpec, SourceSpec, WandbSource
from relaunch.service.ingest import IngestService, UnknownDelivery
from relaunch.simulate import cloud_build_message, monitoring_incident, schedule_data, wandb_payload
from relaunch.triggers.cloudbuild import parse_build
from relaunch.triggers.drift import parse_drift
from relaunch.triggers.errors import TriggerError
from relaunch.triggers.pubsub import PubSubMessage, from_cloudevent_data
from relaunch.triggers.scheduler import parse_schedule
from relaunch.triggers.wandb import parse_wandb
from tests.fakes import FakeBus, FakeStore

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
JOB = JobSpec(command=["python", "x.py"])
EVAL = EvaluateSpec(command=["python", "x.py"])
WANDB = WandbSource(entity="acme", project="digits", collection="digits-model")
DIGITS = PipelineSpec(
    name="digits",
    source=SourceSpec(repo="acme/digits", clone_url="file:///digits", wandb=WANDB),
    train=JOB,
    evaluate=EVAL,
    endpoint="digits-ep",
)
TOKEN = "tok"


class World:
    def __init__(self, *specs: PipelineSpec, now: float = 100_000.0) -> None:
        self.store, self.bus, self.now = FakeStore(), FakeBus(), now
        self.specs = {s.name: s for s in specs or (DIGITS,)}
        self.service = IngestService(self.store, self.bus, lambda: self.specs, clock=lambda: self.now)

    def wandb(self, event_type: str, artifact: str, alias: str = "") -> tuple[int, dict[str, Any]]:
        version_id = "QXJ0aWZhY3Q6MQ==" if alias else None  # an alias event names its version, as the template does
        body = json.dumps(wandb_payload(event_type, artifact, alias=alias, artifact_id=version_id)).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
        reply = self.service.wandb(parse_wandb(headers, body, token=TOKEN, secret=None), headers, body)
        return reply.status, reply.body

    def pubsub(self, source: str, data: dict[str, Any] | bytes, message_id: str = "m1", **attributes: str) -> Any:
        raw = data if isinstance(data, bytes) else json.dumps(data).encode()
        envelope: dict[str, dict[str, Any]] = {
            "message": {"data": base64.b64encode(raw).decode(), "messageId": message_id}
        }
        envelope["message"]["attributes"] = attributes
        delivery = Delivery(key=f"pubsub:{source}:{message_id}", source=source, body=json.dumps(envelope))
        routes: dict[str, tuple[Callable[[PubSubMessage], Any], Callable[[Any, Delivery], Any]]] = {
            "drift": (parse_drift, self.service.drift),
            "schedule": (parse_schedule, self.service.schedule),
            "cloudbuild": (parse_build, self.service.build),
        }
        parse, act = routes[source]
        try:
            event = parse(from_cloudevent_data(envelope))
        except TriggerError as exc:
            return self.service.refuse(delivery, exc)
        return act(event, delivery)


def test_a_new_wandb_version_starts_an_evaluation_run_of_that_artifact() -> None:
    w = World()
    status, body = w.wandb("CREATE_ARTIFACT", "acme/digits/digits-model:v3")
    run = w.store.runs[body["runs"][0]]
    assert status == 202 and run.trigger.kind == "wandb" and run.trigger.artifact == "acme/digits/digits-model:v3"
    assert (
        run.trigger.ref == "refs/heads/main" and run.trigger.sha is None and run.trigger.clone_url == "file:///digits"
    )
    assert next(iter(w.store.deliveries)).startswith("wandb:")
    assert w.wandb("CREATE_ARTIFACT", "acme/digits/digits-model:v3")[1]["outcome"] == "duplicate"


def test_wandb_alias_and_link_events_follow_the_spec() -> None:
    w = World()
    assert w.wandb("ADD_ARTIFACT_ALIAS", "acme/digits/digits-model:candidate", "candidate")[1]["outcome"] == "accepted"
    skipped = w.wandb("ADD_ARTIFACT_ALIAS", "acme/digits/digits-model:staging", "staging")[1]
    assert skipped["outcome"] == "skipped" and "alias staging not in" in skipped["skipped"]["digits"]
    loop = w.wandb("ADD_ARTIFACT_ALIAS", "acme/digits/digits-model:production", "production")[1]
    assert "relaunch moves on promotion" in loop["skipped"]["digits"]
    assert w.wandb("LINK_MODEL", "acme/digits/digits-model:v4")[1]["outcome"] == "accepted"
    other = w.wandb("CREATE_ARTIFACT", "acme/digits/other:v1")[1]
    assert other["outcome"] == "skipped" and "acme/digits/other" in other["reason"]
    assert w.wandb("ADD_ARTIFACT_TAG", "acme/digits/digits-model:v1")[1]["outcome"] == "ignored"


def drifting(**policy: Any) -> PipelineSpec:
    return DIGITS.model_copy(update={"drift": DriftPolicy(**policy)})


def test_a_drift_incident_naming_the_pipeline_retrains_its_branch_head() -> None:
    w = World()
    reply = w.pubsub("drift", monitoring_incident(pipeline="digits", endpoint=None, severity="critical"))
    run = w.store.runs[reply.body["runs"][0]]
    assert reply.status == 202 and run.trigger.kind == "drift" and "Prediction drift" in run.trigger.reason
    assert w.bus.messages[0][1] == {"type": "start_run", "run_id": run.id}


def test_drift_routes_by_endpoint_and_honours_severity_closed_state_and_cooldown() -> None:
    w = World(drifting(min_severity="error", cooldown_s=3600))
    low = w.pubsub("drift", monitoring_incident(pipeline=None, endpoint="digits-ep", severity="warning"), "m1")
    assert low.body["skipped"] == {"digits": "severity warning is below error"}
    ok = w.pubsub("drift", monitoring_incident(pipeline=None, endpoint="digits-ep", severity="error"), "m2")
    assert ok.body["outcome"] == "accepted"
    w.now = w.store.runs[ok.body["runs"][0]].created_at + 60
    again = w.pubsub("drift", monitoring_incident(pipeline=None, endpoint="digits-ep", severity="error"), "m3")
    assert "cooldown" in again.body["skipped"]["digits"]
    closed = w.pubsub("drift", json.loads((SAMPLES / "monitoring" / "incident.closed.json").read_text()), "m4")
    assert closed.body["outcome"] == "ignored" and "closed" in closed.body["reason"]
    assert len(w.store.runs) == 1


def test_a_vertex_model_monitoring_anomaly_routes_by_the_specs_monitoring_job() -> None:
    entry = json.loads((SAMPLES / "monitoring" / "model_monitoring_logentry.json").read_text())
    unrouted = World().pubsub("drift", entry, "x").body
    assert unrouted["outcome"] == "ignored" and "drift.monitoring_jobs" in unrouted["reason"]
    full_name = "projects/677687165274/locations/us-central1/modelDeploymentMonitoringJobs/6680511704087920640"
    for listed in ("6680511704087920640", full_name):
        w = World(drifting(monitoring_jobs=[listed], min_severity="info"))
        reply = w.pubsub("drift", entry, "y")
        assert reply.body["outcome"] == "accepted", reply.body
        assert w.store.runs[reply.body["runs"][0]].trigger.kind == "drift"


def test_drift_for_nobody_or_a_disabled_policy_starts_nothing() -> None:
    w = World(drifting(enabled=False))
    assert (
        "disabled"
        in w.pubsub("drift", monitoring_incident(pipeline="digits", endpoint=None), "a").body["skipped"]["digits"]
    )
    nobody = w.pubsub("drift", monitoring_incident(pipeline="other", endpoint=None), "b").body
    assert nobody["outcome"] == "ignored" and "'other'" in nobody["reason"] and w.store.runs == {}


def test_a_schedule_tick_retrains_the_named_pipeline() -> None:
    w = World()
    reply = w.pubsub("schedule", schedule_data("digits", job="nightly"))
    run = w.store.runs[reply.body["runs"][0]]
    assert run.trigger.kind == "schedule" and run.trigger.actor == "nightly" and run.trigger.ref == "refs/heads/main"
    assert w.pubsub("schedule", schedule_data("digits")).body["outcome"] == "duplicate"  # same message id
    unknown = w.pubsub("schedule", schedule_data("nope"), "m2").body
    assert unknown["outcome"] == "ignored" and "'nope'" in unknown["reason"]


def test_a_final_build_status_nudges_its_run_and_others_are_recorded_only() -> None:
    w = World()
    run_id = w.pubsub("schedule", schedule_data("digits")).body["runs"][0]
    working = w.pubsub("cloudbuild", cloud_build_message(run_id, status="WORKING", build_id="b1")[0], "m2")
    assert working.body["outcome"] == "recorded" and len(w.bus.messages) == 1
    done = w.pubsub("cloudbuild", cloud_build_message(run_id, status="SUCCESS", build_id="b1")[0], "m3")
    assert done.body["outcome"] == "accepted"
    command = w.bus.messages[-1][1]
    assert command["type"] == "build_finished" and command["succeeded"] and command["image"].startswith("local/")
    stray = w.pubsub("cloudbuild", cloud_build_message("no-such-run", build_id="b2")[0], "m4")
    assert stray.status == 200 and stray.body["outcome"] == "ignored" and len(w.bus.messages) == 2


def test_the_final_status_of_a_runs_evaluator_build_nudges_that_run() -> None:
    w = World()
    run_id = w.pubsub("schedule", schedule_data("digits")).body["runs"][0]
    message = cloud_build_message(f"{run_id}.evaluator", status="SUCCESS", build_id="b9")[0]
    done = w.pubsub("cloudbuild", message, "m2")
    assert done.body["outcome"] == "accepted" and done.body["run"] == run_id
    assert w.bus.messages[-1][1]["run_id"] == run_id


def test_a_malformed_message_is_dead_lettered_once_and_kept_in_the_inbox() -> None:
    w = World()
    first = w.pubsub("drift", b"{not json", "bad")
    again = w.pubsub("drift", b"{not json", "bad")
    assert first.body["outcome"] == "dead-lettered" and again.body["outcome"] == "duplicate"
    assert [d[0] for d in w.store.dead] == ["drift"] and "message.data" in w.store.dead[0][1]
    assert w.store.deliveries["pubsub:drift:bad"].outcome.startswith("dead-lettered: ")


def test_replay_nudges_runs_in_flight_then_reruns_under_a_derived_key() -> None:
    w = World()
    run_id = w.pubsub("schedule", schedule_data("digits")).body["runs"][0]
    nudged = w.service.replay("pubsub:schedule:m1")
    assert nudged.body == {"outcome": "nudged", "runs": [run_id]} and len(w.bus.messages) == 2
    w.store.runs[run_id] = w.store.runs[run_id].model_copy(update={"state": RunState.PROMOTED})
    rerun = w.service.replay("pubsub:schedule:m1")
    assert rerun.body["key"] == "pubsub:schedule:m1#replay-1" and rerun.body["runs"][0] != run_id
    w.store.runs[rerun.body["runs"][0]] = w.store.runs[rerun.body["runs"][0]].model_copy(
        update={"state": RunState.FAILED}
    )
    assert w.service.replay("pubsub:schedule:m1#replay-1").body["key"] == "pubsub:schedule:m1#replay-2"


def test_replay_of_a_wandb_delivery_reparses_it_without_its_redacted_token() -> None:
    w = World(DIGITS.model_copy(update={"source": DIGITS.source.model_copy(update={"wandb": None})}))
    assert w.wandb("CREATE_ARTIFACT", "acme/digits/digits-model:v1")[1]["outcome"] == "skipped"
    key = w.store.list_deliveries()[0].key
    assert w.store.deliveries[key].headers["Authorization"] == "[redacted]"
    w.specs = {"digits": DIGITS}  # the spec is fixed: now it watches the collection
    reply = w.service.replay(key)
    assert reply.status == 202 and reply.body["outcome"] == "accepted" and reply.body["key"] == f"{key}#replay-1"


def test_replaying_an_unknown_key_or_a_malformed_delivery_is_a_clear_error() -> None:
    w = World()
    with pytest.raises(UnknownDelivery, match="no delivery 'nope'"):
        w.service.replay("nope")
    w.pubsub("drift", b"[]", "bad")
    with pytest.raises(TriggerError):
        w.service.replay("pubsub:drift:bad")
