"""What W&B artifact events, drift alerts, scheduler ticks and Cloud Build statuses lead to. Pure, given the facts."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from relaunch.domain.commands import BuildFinished, JobNoticed
from relaunch.domain.model import PipelineRun
from relaunch.domain.routing import WandbFacts, route_drift, route_wandb
from relaunch.domain.spec import PipelineSpec
from relaunch.service.plans import Plan, head_run, ignored, routed
from relaunch.triggers.cloudbuild import BuildEvent
from relaunch.triggers.drift import SEVERITY_RANK, DriftAlert, Severity
from relaunch.triggers.scheduler import ScheduleTick
from relaunch.triggers.vertex_jobs import JobLogEvent, names_job
from relaunch.triggers.wandb import WandbEvent, WandbIgnored

# Cloud Monitoring incidents default to "no severity": such an alert counts as a warning.
UNRATED_SEVERITY: Severity = "warning"


def plan_wandb(
    event: WandbEvent | WandbIgnored, specs: Mapping[str, PipelineSpec], key: str, promote_alias: str
) -> Plan:
    """One evaluation run (no training: the model exists) per pipeline watching the artifact's collection.

    The run names the artifact as the event does: a concrete `:vN` (or `${artifact_version}`'s id) is pinned here;
    an alias is resolved once, when the orchestrator fetches it (this path makes no network call).
    """
    if isinstance(event, WandbIgnored):
        return ignored(event.reason)
    facts = WandbFacts(event.kind, event.entity, event.project, event.collection, event.alias)
    routing = route_wandb(specs.values(), facts, promote_alias)
    runs, skipped = [], dict(routing.skipped)
    for spec in routing.matched:
        run = head_run(
            spec,
            key,
            "wandb",
            artifact=event.artifact,  # checked by the parser against the routing fields: what is fetched is routed
            artifact_ref=event.artifact_ref,  # pins the version at intake when the version string names an alias
            actor=event.author,
            reason=f"{event.event_type} {event.artifact}",
        )
        if isinstance(run, str):
            skipped[spec.name] = run
        else:
            runs.append(run)
    where = f"{event.entity}/{event.project}/{event.collection}"
    return routed(runs, skipped, f"no pipeline watches the W&B collection {where}")


def plan_drift(
    alert: DriftAlert,
    specs: Mapping[str, PipelineSpec],
    key: str,
    last_drift_run: Callable[[str, float], float | None],
    now: float,
) -> Plan:
    """A full retrain of each pipeline the alert names, unless its drift policy says no (with the reason).

    `last_drift_run(pipeline, since)` is when the newest drift run that holds the cooldown (see
    domain.coalescing.starts_cooldown) started, looking back to `since`.
    """
    if alert.state == "closed":
        return ignored(f"alert {alert.alert_id} is closed")
    targets = route_drift(specs.values(), alert.pipeline, alert.endpoint, alert.monitoring_job)
    if not targets:
        named = f"pipeline {alert.pipeline!r}" if alert.pipeline else f"endpoint {alert.endpoint!r}"
        if alert.monitoring_job and not (alert.pipeline or alert.endpoint):
            named = f"monitoring job {alert.monitoring_job!r} (list it in a spec's drift.monitoring_jobs)"
        elif not (alert.pipeline or alert.endpoint):
            named = "no pipeline or endpoint"
        return ignored(f"the alert names {named}: no pipeline matches")
    runs, skipped = [], {}
    for spec in targets:
        why = drift_skip_reason(spec, alert, last_drift_run(spec.name, now - spec.drift.cooldown_s), now)
        run = why or head_run(spec, key, "drift", reason=alert.summary)
        if isinstance(run, str):
            skipped[spec.name] = run
        else:
            runs.append(run)
    return routed(runs, skipped, "")


def drift_skip_reason(spec: PipelineSpec, alert: DriftAlert, last_run_at: float | None, now: float) -> str | None:
    """Why this pipeline's drift policy does not retrain on this alert, or None."""
    policy = spec.drift
    if not policy.enabled:
        return "drift retraining is disabled for this pipeline"
    severity = alert.severity or UNRATED_SEVERITY
    if SEVERITY_RANK[severity] < SEVERITY_RANK[policy.min_severity]:
        return f"severity {severity} is below {policy.min_severity}"
    if last_run_at is not None and now - last_run_at < policy.cooldown_s:
        ago, cooldown = f"{now - last_run_at:.0f}s ago", f"{policy.cooldown_s:.0f}s"
        return f"cooldown: the last drift run that trained (or may still train) started {ago} (cooldown {cooldown})"
    return None


def plan_schedule(tick: ScheduleTick, specs: Mapping[str, PipelineSpec], key: str) -> Plan:
    """A full retrain of the named pipeline's branch head."""
    spec = specs.get(tick.pipeline)
    if spec is None:
        return ignored(f"no pipeline {tick.pipeline!r} (scheduler job {tick.job or 'unnamed'})")
    run = head_run(spec, key, "schedule", reason=tick.reason, actor=tick.job)
    if isinstance(run, str):
        return routed([], {spec.name: run}, "")
    return routed([run], {}, "")


def plan_build(event: BuildEvent, run: PipelineRun | None) -> Plan:
    """Record a build's status; a final one nudges the run that asked for the build."""
    if event.run_id is None:
        return ignored(f"build {event.build_id} belongs to no relaunch run", status=200)
    if run is None:
        return ignored(f"build {event.build_id} names run {event.run_id!r}, which does not exist", status=200)
    body = {"outcome": "recorded", "run": run.id, "build": event.build_id, "status": event.status}
    if not event.final:
        return Plan(200, body)
    image = event.images[0] if event.images else None
    nudge = BuildFinished(run_id=run.id, build_id=event.build_id, image=image, succeeded=event.succeeded)
    return Plan(200, {**body, "outcome": "accepted"}, commands=[nudge])


def plan_job_log(event: JobLogEvent, active: list[PipelineRun]) -> Plan:
    """Nudge the active runs waiting on the job a Vertex log entry names; the orchestrator reads the job's state."""
    waiting = [run for run in active if any(names_job(job, event.job_id) for job in run.jobs.values())]
    if not waiting:  # another job of the project, or a run that has moved on: nothing waits on it
        return ignored(f"no active run waits on CustomJob {event.job_id}", status=200)
    nudges = [JobNoticed(run_id=run.id, job_id=event.job_id) for run in waiting]
    return Plan(200, {"outcome": "accepted", "runs": [run.id for run in waiting], "job": event.job_id}, commands=nudges)
