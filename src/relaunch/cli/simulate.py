"""`relaunch simulate KIND`: a correctly signed, real-format event sent to the running stack."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from relaunch import bootstrap
from relaunch.cli.running import running_url
from relaunch.domain import effects
from relaunch.domain.model import FunctionName
from relaunch.settings import Settings, reveal
from relaunch.textsafe import safe_block, safe_line


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = sub.add_parser("simulate", help="send a correctly signed, real-format event to the running stack")
    kinds = sim.add_subparsers(metavar="KIND", dest="kind", required=True)
    push = kinds.add_parser("push", help="a GitHub push of a local repository's HEAD")
    push.add_argument("--repo-dir", type=Path, required=True, help="local git repository whose HEAD is pushed")
    push.add_argument("--full-name", required=True, help="owner/name the push claims to come from")
    push.add_argument("--branch", default="main")
    push.add_argument("--before", help="previous head (default: a new branch)")
    pr = kinds.add_parser("pr", help="a GitHub pull_request whose head is a local repository's HEAD")
    pr.add_argument("--repo-dir", type=Path, required=True)
    pr.add_argument("--full-name", required=True)
    pr.add_argument("--base", default="main", help="the base branch")
    pr.add_argument("--action", default="opened")
    pr.add_argument("--number", type=int, default=1)
    dispatch = kinds.add_parser("dispatch", help="a GitHub workflow_dispatch (a manual run)")
    dispatch.add_argument("--full-name", required=True)
    dispatch.add_argument("--ref", default="main")
    dispatch.add_argument("--input", action="append", default=[], metavar="NAME=VALUE", help="pipeline, reason, …")
    drift = kinds.add_parser("drift", help="a Cloud Monitoring drift incident on relaunch-drift")
    drift.add_argument("--pipeline")
    drift.add_argument("--endpoint")
    drift.add_argument("--severity", default="warning")
    drift.add_argument("--state", default="open", choices=["open", "closed"])
    schedule = kinds.add_parser("schedule", help="a Cloud Scheduler tick on relaunch-schedule")
    schedule.add_argument("--pipeline", required=True)
    schedule.add_argument("--job", default="relaunch-simulate")
    wandb = kinds.add_parser("wandb", help="a W&B automation webhook for an artifact event")
    wandb.add_argument("--artifact", required=True, help="entity/project/name (with :vN unless --model-dir)")
    wandb.add_argument("--model-dir", type=Path, help="log this folder as the artifact's next version first")
    wandb.add_argument(
        "--event",
        default="CREATE_ARTIFACT",
        choices=["CREATE_ARTIFACT", "ADD_ARTIFACT_ALIAS", "LINK_MODEL", "LINK_ARTIFACT"],
    )
    wandb.add_argument("--alias", default="candidate", help="the alias added (ADD_ARTIFACT_ALIAS)")
    retrain = kinds.add_parser("retrain", help="a manual retrain request on relaunch-commands")
    retrain.add_argument("--full-name", required=True, help="owner/name of the training repository")
    retrain.add_argument("--ref", default="main")
    retrain.add_argument("--pipeline", default="")
    retrain.add_argument("--reason", default="")
    retrain.add_argument("--priority", type=int)
    retrain.add_argument("--request-id", help="idempotency key (default: none, the message id)")
    build = kinds.add_parser("build", help="a Cloud Build status on cloud-builds for a run")
    build.add_argument("--run", required=True, help="the run id the build was for")
    build.add_argument("--status", default="SUCCESS")
    build.add_argument("--build-id")
    sim.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    """Send one event of the asked kind to the running stack; print the answer (or where to find it)."""
    running_url(Settings(), FunctionName.ORCHESTRATOR)  # before anything is written to a home no stack runs on
    settings = bootstrap.with_local_secrets(Settings())
    if args.kind in ("push", "pr", "dispatch"):
        return _simulate_github(settings, args)
    if args.kind == "wandb":
        return _simulate_wandb(settings, args)
    return _simulate_pubsub(settings, args)


def _simulate_github(settings: Settings, args: argparse.Namespace) -> int:
    from relaunch import simulate as sim

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
        inputs = dict(item.partition("=")[::2] for item in args.input)
        payload = sim.workflow_dispatch_payload(args.full_name, ref=args.ref, inputs=inputs)
    return _print_reply(sim.send_github(url, event, payload, settings.webhook_secret() or ""))


def _simulate_pubsub(settings: Settings, args: argparse.Namespace) -> int:
    """Publish on the stack's bus, so its dispatcher delivers the message as Eventarc would."""
    from relaunch import simulate as sim
    from relaunch.domain.commands import BUILDS_TOPIC, DRIFT_TOPIC, SCHEDULE_TOPIC

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
        data = sim.retrain_data(args.full_name, args.ref, args.pipeline, args.reason, args.priority, args.request_id)
    else:
        function, topic = FunctionName.BUILD_STATUS, BUILDS_TOPIC
        data, attributes = sim.cloud_build_message(args.run, status=args.status, build_id=args.build_id)
    message_id = bootstrap.App(settings).bus.publish(topic, data, attributes)
    request_id = getattr(args, "request_id", None)
    key = effects.retrain_delivery(request_id) if request_id else effects.pubsub_delivery(function, message_id)
    print(f"published message {safe_line(message_id)} on {topic}; inbox key {safe_line(key)}")
    return 0


def _simulate_wandb(settings: Settings, args: argparse.Namespace) -> int:
    from relaunch.simulate import send_wandb, wandb_payload

    url = running_url(settings, FunctionName.WANDB_WEBHOOK)
    artifact = args.artifact
    if args.model_dir is not None:
        store = bootstrap.App(settings).artifacts
        if not hasattr(store, "log") or not args.model_dir.is_dir():
            print(
                "relaunch: --model-dir needs a folder and the local artifact store (RELAUNCH_ARTIFACTS=local)",
                file=sys.stderr,
            )
            return 2
        aliases = (args.alias,) if args.event == "ADD_ARTIFACT_ALIAS" else ()
        artifact = store.log(artifact.split(":", 1)[0], args.model_dir, aliases=aliases)
        print(f"logged {safe_line(args.model_dir)} as {safe_line(artifact)}")
    alias = args.alias if args.event == "ADD_ARTIFACT_ALIAS" else ""
    if alias:
        artifact = f"{artifact.split(':', 1)[0]}:{alias}"  # W&B renders an alias event's version string this way
    token, secret = reveal(settings.wandb_webhook_token), reveal(settings.wandb_webhook_secret)
    return _print_reply(send_wandb(url, wandb_payload(args.event, artifact, alias=alias), token=token, secret=secret))


def _print_reply(reply: Any) -> int:
    print(f"{reply.status_code} {safe_block(reply.text)}")
    return 0 if reply.ok else 1
