"""Per function, a cheap first request it really answers 2xx: what a cold start is timed to and guarded on.

benchmarks/cold_start.py times each function from process start to the 2xx answer to these; tests/test_architecture.py
checks which modules a function process holds after answering one. A webhook's probe is signed with SECRET (the
W&B one is a bearer token), so the function process needs RELAUNCH_GITHUB_WEBHOOK_SECRET and
RELAUNCH_WANDB_WEBHOOK_TOKEN set to it.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

from relaunch.simulate import github_headers, monitoring_incident, schedule_data, wandb_payload

SECRET = "bench-secret"
Probe = tuple[str, str, bytes, dict[str, str]]  # method, path, body, headers


def ping_request() -> Probe:
    """GitHub's ping, signed: answered 200 pong without touching a pipeline."""
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1, "repository": {"full_name": "a/b"}}).encode()
    return "POST", "/", body, github_headers("ping", body, SECRET, str(uuid.uuid4()))


def pubsub_request(data: dict[str, Any], attributes: dict[str, str] | None = None) -> Probe:
    """A Pub/Sub message as Eventarc delivers it to a CloudEvent function (binary mode)."""
    encoded = base64.b64encode(json.dumps(data).encode()).decode()
    message_id = str(uuid.uuid4().int)[:16]
    message = {"data": encoded, "messageId": message_id, "attributes": attributes or {}}
    headers = {
        "ce-id": message_id,
        "ce-specversion": "1.0",
        "ce-source": "//pubsub.googleapis.com/projects/p/topics/t",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "Content-Type": "application/json",
    }
    body = json.dumps({"message": message, "subscription": "projects/p/subscriptions/s"}).encode()
    return "POST", "/", body, headers


def command_request(run_id: str = "bench-unknown") -> Probe:
    """A StartRun command: for an unknown run it is dead-lettered and acknowledged (2xx)."""
    return pubsub_request({"type": "start_run", "run_id": run_id})


def wandb_request() -> Probe:
    """A W&B artifact-link automation, authenticated with the bearer token."""
    payload = wandb_payload("LINK_ARTIFACT", "team/proj/model:v1", artifact_id="QXJ0aWZhY3Q6MQ==")
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {SECRET}"}
    return "POST", "/", json.dumps(payload).encode(), headers


def build_request() -> Probe:
    """A Cloud Build status for a run nobody knows (a build relaunch did not ask for is ignored)."""
    build_id = str(uuid.uuid4())
    build = {"id": build_id, "projectId": "p", "status": "WORKING", "substitutions": {"_RELAUNCH_RUN_ID": "none"}}
    return pubsub_request(build, {"buildId": build_id, "status": "WORKING"})


def job_request() -> Probe:
    """A Vertex AI CustomJob service log entry: a wake-up for the runs waiting on that job (none here)."""
    labels = {"job_id": "1234567890", "project_id": "p", "task_name": "service"}
    return pubsub_request({"resource": {"type": "ml_job", "labels": labels}, "textPayload": "Job is running."})


PROBES: dict[str, Callable[[], Probe]] = {
    "github_webhook": ping_request,
    "wandb_webhook": wandb_request,
    "orchestrator": command_request,
    "drift_alert": lambda: pubsub_request(monitoring_incident(pipeline="digits", endpoint=None)),
    "schedule_tick": lambda: pubsub_request(schedule_data("digits", job="bench")),
    "build_status": build_request,
    "vertex_job": job_request,
    "reconcile": lambda: pubsub_request({}),
    "dashboard": lambda: ("GET", "/login", b"", {}),
}
