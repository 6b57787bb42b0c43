"""Steps for what feeds the functions from outside: Cloud Scheduler jobs, the log sinks (Model Monitoring anomalies,
Vertex AI job lifecycle entries), GitHub webhooks and W&B automations."""

from __future__ import annotations

import json

from relaunch.deploy import plan_iam as iam
from relaunch.deploy.command import Capture, cmd, render, word
from relaunch.deploy.infra import (
    DriftSink,
    GitHubWebhook,
    Infra,
    JobSink,
    PipelineSchedule,
    ReconcileSchedule,
    WandbAutomation,
)
from relaunch.deploy.step import Step, function_url, gcloud, secret_value

SCHEDULER = "scheduler jobs"
SINK = "drift log sink"
JOB_SINK = "job log sink"
GITHUB = "GitHub webhooks"
WANDB = "W&B automations"
WANDB_HELPER = ("python3", "-m", "relaunch.deploy.wandb_automation")
ANOMALY_LOG = "aiplatform.googleapis.com%2Fmodel_monitoring_anomaly"  # what triggers/drift.py reads
# The payload template README.md documents ("Inbound events"): what wandb_webhook parses.
WANDB_PAYLOAD = {
    "event_type": "${event_type}",
    "artifact_version_string": "${artifact_version_string}",
    "artifact_collection_name": "${artifact_collection_name}",
    "alias": "${alias}",
    "entity_name": "${entity_name}",
    "project_name": "${project_name}",
    "event_author": "${event_author}",
    "artifact_version": "${artifact_version}",
}


def schedule_step(infra: Infra, job: PipelineSchedule | ReconcileSchedule) -> Step:
    """A Cloud Scheduler job publishing to its topic; a pipeline's job names the pipeline (what schedule_tick reads)."""
    where = [job.job, f"--location={infra.region}"]
    topic = f"projects/{infra.project}/topics/{job.topic}"  # a bare name resolves against gcloud's default project
    target = [f"--schedule={job.schedule}", f"--time-zone={job.time_zone}", f"--topic={topic}"]
    fields = ["schedule", "timeZone", "pubsubTarget.topicName"]
    expect = [job.schedule, job.time_zone, topic]
    attributes, message = _job_message(job)
    if attributes:
        fields.append("pubsubTarget.attributes.pipeline")
        expect.append(attributes["pipeline"])
    listed = ",".join(f"{k}={v}" for k, v in attributes.items())
    jobs = ("scheduler", "jobs")
    create = gcloud(infra.project, *jobs, "create", "pubsub", *where, *target, *message,
                    *([f"--attributes={listed}"] if listed else []))  # fmt: skip
    update = gcloud(infra.project, *jobs, "update", "pubsub", *where, *target, *message,
                    *([f"--update-attributes={listed}"] if listed else []))  # fmt: skip
    describe = gcloud(infra.project, *jobs, "describe", *where, f"--format=value({','.join(fields)})")
    return Step(f"scheduler job {job.job}", SCHEDULER, describe, create, " ".join(expect), update)


def _job_message(job: PipelineSchedule | ReconcileSchedule) -> tuple[dict[str, str], list[str]]:
    """A job's attributes and message flags: a pipeline's tick names it; reconcile's content is ignored."""
    if isinstance(job, ReconcileSchedule):
        about = "relaunch: reconcile tick (advances rollouts, polls lost jobs)"
        return {}, ["--message-body=reconcile", f"--description={about}"]
    body = json.dumps({"pipeline": job.pipeline, "reason": job.reason}, separators=(",", ":"))
    about = f"relaunch: retrain {job.pipeline} ({job.reason})"
    return {"pipeline": job.pipeline, "job": job.job}, [f"--message-body={body}", f"--description={about}"]


def sink_steps(infra: Infra, sink: DriftSink) -> list[Step]:
    """Route Model Monitoring anomaly logs to the drift topic, and let the sink's writer identity publish there."""
    log_filter = sink.log_filter or f'logName="projects/{infra.project}/logs/{ANOMALY_LOG}"'
    about = "relaunch: Vertex AI Model Monitoring anomalies to drift_alert"
    return _log_sink(infra, SINK, sink.name, sink.topic, log_filter, about)


def job_sink_steps(infra: Infra, sink: JobSink) -> list[Step]:
    """Route Vertex AI CustomJob lifecycle entries to the vertex_job function's topic (triggers/vertex_jobs.py)."""
    about = "relaunch: Vertex AI CustomJob lifecycle entries to vertex_job"
    return _log_sink(infra, JOB_SINK, sink.name, sink.topic, sink.log_filter, about)


def _log_sink(infra: Infra, section: str, name: str, topic: str, log_filter: str, about: str) -> list[Step]:
    """A log sink to a topic (created, or updated to the declared filter), and publish rights for its writer."""
    destination = f"pubsub.googleapis.com/projects/{infra.project}/topics/{topic}"
    describe = gcloud(infra.project, "logging", "sinks", "describe", name, "--format=value(destination,filter)")
    create = gcloud(
        infra.project,
        "logging",
        "sinks",
        "create",
        name,
        destination,
        f"--log-filter={log_filter}",
        f"--description={about}",
    )
    update = gcloud(infra.project, "logging", "sinks", "update", name, destination, f"--log-filter={log_filter}")
    writer = Capture(gcloud(infra.project, "logging", "sinks", "describe", name, "--format=value(writerIdentity)"))
    grant = iam.binding(infra.project, section, iam.topic(topic), writer, f"sink {name}", "roles/pubsub.publisher")
    return [Step(f"log sink {name}", section, describe, create, f"{destination} {log_filter}", update), grant]


def github_step(infra: Infra, hook: GitHubWebhook) -> Step:
    """A repository webhook to the function's URL; the secret goes to gh on stdin, never on a command line."""
    url = function_url(infra.project, infra.region, hook.function)
    hooks = f"repos/{hook.repo}/hooks"
    select = word('.[] | select(.config.url == "', url, '") | .config.url')
    describe = cmd("gh", "api", "--paginate", hooks, word("--jq=", select))
    events = [f"events[]={event}" for event in hook.events]
    create = cmd(
        "gh", "api", hooks, "--method=POST", "-f", "name=web", "-F", "active=true",
        *[arg for event in events for arg in ("-f", event)],
        "-f", word("config[url]=", url), "-f", "config[content_type]=json", "-f", "config[insecure_ssl]=0",
        "-F", "config[secret]=@-",
        stdin=secret_value(infra.project, hook.secret),
    )  # fmt: skip
    return Step(f"github webhook {hook.repo}", GITHUB, describe, create, url, update=create)  # no output: no hook


def wandb_steps(infra: Infra) -> list[Step]:
    """Check each W&B webhook integration points at its function (a manual setting), then create automations."""
    if infra.wandb is None:
        return []
    key = [("WANDB_API_KEY", secret_value(infra.project, infra.wandb.api_key_secret))]
    seen: set[tuple[str, str]] = set()
    steps = []
    for automation in infra.wandb.automations:
        if (automation.entity, automation.integration) not in seen:
            seen.add((automation.entity, automation.integration))
            steps.append(_integration_step(infra, automation, key))
        steps.append(_automation_step(automation, key))
    return steps


def _integration_step(infra: Infra, a: WandbAutomation, key: list[tuple[str, Capture]]) -> Step:
    url = function_url(infra.project, infra.region, a.function)
    describe = cmd(*WANDB_HELPER, "integration", f"--entity={a.entity}", f"--name={a.integration}", env=key)
    secrets = infra.function(a.function).secrets
    token, signing = secrets.get("RELAUNCH_WANDB_WEBHOOK_TOKEN"), secrets.get("RELAUNCH_WANDB_WEBHOOK_SECRET")
    notes = [
        f"MANUAL (W&B has no API for it): in W&B team {a.entity}'s settings, Webhooks, create {a.integration!r}",
        f"  URL: the output of: {render(url.cmd)}",
    ]
    if token:
        notes.append(f"  Access token: a W&B team secret holding Secret Manager secret {token!r}")
    if signing:
        notes.append(f"  Secret: a W&B team secret holding Secret Manager secret {signing!r}")
    missing = " ".join(line.strip() for line in notes) + "; then run relaunch deploy again"
    return Step(
        f"wandb integration {a.entity}/{a.integration}", WANDB, describe, None, url, None, missing, tuple(notes)
    )


def _automation_step(a: WandbAutomation, key: list[tuple[str, Capture]]) -> Step:
    describe = cmd(*WANDB_HELPER, "describe", f"--entity={a.entity}", f"--name={a.name}", env=key)
    scope = [f"--collection={a.collection}", f"--artifact-type={a.artifact_type}"] if a.collection else []
    payload = json.dumps(a.payload or WANDB_PAYLOAD, separators=(",", ":"))
    create = cmd(
        *WANDB_HELPER, "create", f"--entity={a.entity}", f"--project={a.project}", f"--name={a.name}",
        f"--event={a.event}", *scope, *([f"--alias-regex={a.alias}"] if a.alias else []),
        f"--integration={a.integration}", f"--payload={payload}", env=key,
    )  # fmt: skip
    return Step(f"wandb automation {a.entity}/{a.name}", WANDB, describe, create)
