"""`relaunch simulate KIND`: a correctly signed, real-format event sent to the running stack.

Every typo is one line: argparse's usage error (exit 2) for a malformed value, `relaunch simulate KIND: …` (exit 2)
for one that names nothing (no such branch, repository or pipeline), and one line (exit 1) when the stack is not
there or does not answer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from relaunch.cli import arguments as a
from relaunch.cli.running import running_url
from relaunch.settings import Settings, reveal
from relaunch.textsafe import safe_block, safe_line

DRIFT_FORMATS = """\
The drift trigger (drift_alert, on relaunch-drift) reads three formats:
  monitoring        a Cloud Monitoring incident (schema 1.2, a Pub/Sub notification channel); the pipeline comes
                    from the policy's user label relaunch_pipeline, the endpoint from resource.labels.endpoint_id
  model_monitoring  a Vertex AI Model Monitoring anomaly LogEntry forwarded by a Cloud Logging sink
  generic           {"pipeline" or "endpoint", "feature", "metric", "value", "threshold", "severity"}
simulate sends the first: a Cloud Monitoring incident naming --pipeline and/or --endpoint."""
_SIMULATE = "send a correctly signed, real-format event to the running stack (`relaunch up` in the same RELAUNCH_HOME)"
_KINDS = (
    "push, pr and dispatch post to github_webhook and print its answer; wandb posts to wandb_webhook; drift, schedule,"
    " retrain and cloudbuild are published on the stack's bus and print the inbox key to look for (`relaunch inbox`)"
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = sub.add_parser("simulate", help=_SIMULATE, description=_SIMULATE + ".", epilog=_KINDS)
    kinds = sim.add_subparsers(metavar="KIND", dest="kind", required=True, help="the kind of event (its source)")
    _github_parsers(kinds)
    _pubsub_parsers(kinds)
    wandb = kinds.add_parser("wandb", help="a W&B automation webhook for an artifact event")
    wandb.add_argument(
        "--artifact", required=True, type=a.artifact, help="entity/project/name (with :vN unless --model-dir)"
    )
    wandb.add_argument(
        "--model-dir", type=a.folder, help="log this folder as the artifact's next version first (local artifacts)"
    )
    wandb.add_argument(
        "--event",
        default="CREATE_ARTIFACT",
        choices=["CREATE_ARTIFACT", "ADD_ARTIFACT_ALIAS", "LINK_MODEL", "LINK_ARTIFACT"],
        help="the W&B event type (default CREATE_ARTIFACT)",
    )
    wandb.add_argument("--alias", default="candidate", help="the alias added (ADD_ARTIFACT_ALIAS)")
    sim.set_defaults(func=cmd_simulate)


def _github_parsers(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    repo_dir = "a local git repository; its HEAD is the commit sent"
    full_name = "owner/name the event claims to come from (the pipeline spec's source.repo)"
    push = kinds.add_parser("push", help="a GitHub push of a local repository's HEAD")
    push.add_argument("--repo-dir", type=Path, required=True, help=repo_dir)
    push.add_argument("--full-name", type=a.full_name, required=True, help=full_name)
    push.add_argument("--branch", type=a.branch, default="main", help="the branch pushed (default main)")
    push.add_argument("--before", help="the previous head, any commit name git resolves (default: a new branch)")
    pr = kinds.add_parser("pr", help="a GitHub pull_request whose head is a local repository's HEAD")
    pr.add_argument("--repo-dir", type=Path, required=True, help=repo_dir)
    pr.add_argument("--full-name", type=a.full_name, required=True, help=full_name)
    pr.add_argument("--base", type=a.branch, default="main", help="the base branch, a branch of --repo-dir")
    pr.add_argument("--action", default="opened", help="the pull_request action: opened, synchronize, closed, …")
    pr.add_argument("--number", type=a.positive, default=1, help="the pull request number (default 1)")
    dispatch = kinds.add_parser("dispatch", help="a GitHub workflow_dispatch (a manual run)")
    dispatch.add_argument("--full-name", type=a.full_name, required=True, help=full_name)
    dispatch.add_argument("--ref", type=a.ref, default="main", help="the branch or ref to run (default main)")
    dispatch.add_argument(
        "--input",
        type=a.name_value,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a workflow input, repeatable: pipeline, reason, priority, sha, force",
    )


def _pubsub_parsers(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    drift = kinds.add_parser(
        "drift",
        help="a Cloud Monitoring drift incident on relaunch-drift",
        description=DRIFT_FORMATS,
        formatter_class=formatter,
    )
    drift.add_argument("--pipeline", type=a.pipeline, help="the pipeline the alert is for (label relaunch_pipeline)")
    drift.add_argument("--endpoint", help="the endpoint id the alert is on (resource label endpoint_id)")
    severity = ["info", "warning", "error", "critical"]
    drift.add_argument("--severity", default="warning", choices=severity, help="the incident's severity")
    drift.add_argument("--state", default="open", choices=["open", "closed"], help="open an incident, or close it")
    schedule = kinds.add_parser("schedule", help="a Cloud Scheduler tick on relaunch-schedule")
    schedule.add_argument("--pipeline", type=a.pipeline, required=True, help="the pipeline to retrain")
    schedule.add_argument("--job", default="relaunch-simulate", help="the Scheduler job's name, kept on the run")
    retrain = kinds.add_parser("retrain", help="a manual retrain request on relaunch-commands")
    retrain.add_argument("--full-name", type=a.full_name, required=True, help="owner/name of the training repository")
    retrain.add_argument("--ref", type=a.ref, default="main", help="the branch or ref to retrain (default main)")
    retrain.add_argument(
        "--pipeline", type=a.pipeline, help="only this pipeline (default: every one of the repository)"
    )
    retrain.add_argument("--reason", default="", help="why, shown on the run")
    retrain.add_argument("--priority", type=a.priority, help="training queue priority added to the spec's, 0 to 100")
    retrain.add_argument("--request-id", help="idempotency key (default: none, the message id)")
    build = kinds.add_parser("cloudbuild", help="a Cloud Build status on cloud-builds for a run (source cloudbuild)")
    build.add_argument("--run", required=True, help="the run id the build was for")
    build.add_argument("--status", type=a.build_status, default="SUCCESS", help="the build's status (default SUCCESS)")
    build.add_argument("--build-id", help="the Cloud Build id (default: a new UUID)")


def cmd_simulate(args: argparse.Namespace) -> int:
    """Send one event of the asked kind to the running stack; print the answer (or where to find it)."""
    import requests

    from relaunch import bootstrap
    from relaunch.domain.model import FunctionName
    from relaunch.simulate import SimulateError

    running_url(Settings(), FunctionName.ORCHESTRATOR)  # before anything is written to a home no stack runs on
    settings = bootstrap.with_local_secrets(Settings())
    try:
        _check_pipelines(settings, args)
        if args.kind in ("push", "pr", "dispatch"):
            return _simulate_github(settings, args)
        if args.kind == "wandb":
            return _simulate_wandb(settings, args)
        return _simulate_pubsub(settings, args)
    except SimulateError as exc:
        print(f"relaunch simulate {args.kind}: {safe_line(exc)}", file=sys.stderr)
        return 2
    except requests.RequestException as exc:  # a stack.json whose process lives but whose functions do not listen
        url = exc.request.url if exc.request is not None else "its functions"
        reason = type(exc).__name__
        print(
            f"relaunch: the stack in {settings.home} does not answer at {safe_line(url)} ({reason}): restart it with "
            "`relaunch up`",
            file=sys.stderr,
        )
        return 1


def _check_pipelines(settings: Settings, args: argparse.Namespace) -> None:
    """Refuse a pipeline name no spec in the pipelines folder has (the stack would only record "no pipeline")."""
    from relaunch.config_files import load_specs
    from relaunch.simulate import SimulateError

    named = [getattr(args, "pipeline", None)] + [v for k, v in getattr(args, "input", []) if k == "pipeline"]
    wanted = [name for name in named if name]
    if args.kind == "drift" and not (args.pipeline or args.endpoint):
        raise SimulateError("name the drifting model: --pipeline NAME and/or --endpoint ID")
    if not wanted or not settings.pipelines_dir.is_dir():
        return
    known = load_specs(settings.pipelines_dir)
    for name in wanted:
        if name not in known:
            raise SimulateError(
                f"no pipeline {safe_line(name)!r} in {settings.pipelines_dir} (RELAUNCH_PIPELINES_DIR); "
                f"pipelines: {', '.join(sorted(known)) or 'none'}"
            )


def _simulate_github(settings: Settings, args: argparse.Namespace) -> int:
    from relaunch import simulate as sim
    from relaunch.domain.model import FunctionName

    url = running_url(settings, FunctionName.GITHUB_WEBHOOK)
    if args.kind == "push":
        event = "push"
        payload = sim.push_payload(args.repo_dir, full_name=args.full_name, branch=args.branch, before=args.before)
    elif args.kind == "pr":
        event = "pull_request"
        payload = sim.pull_request_payload(
            args.repo_dir, full_name=args.full_name, base=args.base, action=args.action, number=args.number
        )
    else:
        event = "workflow_dispatch"
        inputs = dict(args.input)
        payload = sim.workflow_dispatch_payload(args.full_name, ref=args.ref, inputs=inputs)
    return _print_reply(sim.send_github(url, event, payload, settings.webhook_secret() or ""))


def _simulate_pubsub(settings: Settings, args: argparse.Namespace) -> int:
    """Publish on the stack's bus, so its dispatcher delivers the message as Eventarc would."""
    from relaunch import bootstrap
    from relaunch import simulate as sim
    from relaunch.domain import effects
    from relaunch.domain.commands import BUILDS_TOPIC, DRIFT_TOPIC, SCHEDULE_TOPIC
    from relaunch.domain.model import FunctionName

    attributes: dict[str, str] = {}
    if args.kind == "drift":
        function, topic = FunctionName.DRIFT_ALERT, DRIFT_TOPIC
        severity, state = args.severity, args.state
        data = sim.monitoring_incident(pipeline=args.pipeline, endpoint=args.endpoint, severity=severity, state=state)
    elif args.kind == "schedule":
        function, topic, data = (
            FunctionName.SCHEDULE_TICK,
            SCHEDULE_TOPIC,
            sim.schedule_data(args.pipeline, job=args.job),
        )
    elif args.kind == "retrain":
        function, topic = FunctionName.ORCHESTRATOR, settings.pubsub_commands_topic
        pipeline = args.pipeline or ""
        data = sim.retrain_data(args.full_name, args.ref, pipeline, args.reason, args.priority, args.request_id)
    else:
        function, topic = FunctionName.BUILD_STATUS, BUILDS_TOPIC
        data, attributes = sim.cloud_build_message(args.run, status=args.status, build_id=args.build_id)
    message_id = bootstrap.App(settings).bus.publish(topic, data, attributes)
    request_id = getattr(args, "request_id", None)
    key = effects.retrain_delivery(request_id) if request_id else effects.pubsub_delivery(function, message_id)
    print(f"published message {safe_line(message_id)} on {topic}; inbox key {safe_line(key)}")
    return 0


def _simulate_wandb(settings: Settings, args: argparse.Namespace) -> int:
    from relaunch import bootstrap
    from relaunch.domain.model import FunctionName
    from relaunch.simulate import LocalWandb, local_wandb_event, send_wandb, wandb_payload

    url = running_url(settings, FunctionName.WANDB_WEBHOOK)
    store = bootstrap.App(settings).artifacts
    if not isinstance(store, LocalWandb) and args.model_dir is None and args.event != "ADD_ARTIFACT_ALIAS":
        payload = wandb_payload(args.event, args.artifact)  # a version W&B itself holds
    else:  # W&B logs the version or sets the alias before it sends the event: done on the local store, id sent
        payload, notes = local_wandb_event(store, args.event, args.artifact, alias=args.alias, model_dir=args.model_dir)
        for note in notes:
            print(safe_line(note))
    token, secret = reveal(settings.wandb_webhook_token), reveal(settings.wandb_webhook_secret)
    return _print_reply(send_wandb(url, payload, token=token, secret=secret))


def _print_reply(reply: Any) -> int:
    print(f"{reply.status_code} {safe_block(reply.text)}")
    return 0 if reply.ok else 1
