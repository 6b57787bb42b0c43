"""The `relaunch` command line: up, demo, runs, simulate, inbox, replay, rollback, approve, reject, doctor, cost,
deploy, launch-queue.

Every command's parser is built at each start, so a module of this package imports at its top only what building its
parser needs; a command imports what it runs with (the store, rich, requests, YAML...) when it runs. `relaunch runs`
then loads what listing runs needs and nothing of the other commands (tests/unit/test_cli_imports.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from relaunch.cli import approvals, environments, gc, launch_queue, lineage, simulate, up
from relaunch.cli.arguments import SuggestingParser
from relaunch.cli.running import running_url
from relaunch.cli.secret_env import without_secrets_in_environment
from relaunch.cli.views import MAX_PAGE, cmd_cost, cmd_inbox, cmd_runs, no_store_yet, page_limit
from relaunch.settings import Settings
from relaunch.textsafe import safe_line


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    args.exec_argv = sys.argv[1:] if argv is None else None  # None: called in-process, never re-executed
    try:
        return int(args.func(args) or 0)
    except (ValueError, RuntimeError) as exc:  # the ones a user fixes, told in one line; any other goes on up
        status = _told(exc)
        if status is None:
            raise
        return status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader stopped early (`relaunch runs show ID | head`): nothing more to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not raise again
        return 141  # 128 + SIGPIPE, as a shell reports a writer whose pipe closed


def _told(exc: ValueError | RuntimeError) -> int | None:
    """Say on stderr, in one line, an error the user can fix and return the exit status; None: not one of those."""
    from relaunch.domain.spec import SpecError  # the spec models: imported by the commands that read specs, not all

    if isinstance(exc, ValidationError):  # a RELAUNCH_* variable with a wrong value
        fields = "; ".join(f"RELAUNCH_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        print(f"relaunch: invalid configuration: {fields}", file=sys.stderr)
        return 2
    if isinstance(exc, SpecError):
        print(f"relaunch: invalid pipeline spec: {exc}", file=sys.stderr)
        return 2
    if isinstance(exc, RuntimeError):  # the stack could not start (already running, a function exited, …)
        print(f"relaunch: {exc}", file=sys.stderr)
        return 1
    return None


def _parser() -> argparse.ArgumentParser:
    description = "Event-driven retraining, evaluation and promotion."
    p: argparse.ArgumentParser = SuggestingParser(prog="relaunch", description=description)
    sub = p.add_subparsers(metavar="COMMAND", help="the command to run (`relaunch COMMAND -h` says more)")
    up.add_parser(sub)
    demo = sub.add_parser("demo", help="run the whole loop on a throwaway repo and print its timeline")
    demo.add_argument("--home", type=Path, help="keep the stack's state here instead of a temporary folder")
    demo.add_argument(
        "--profile",
        choices=["local", "gcp-emulated"],
        default="local",
        help="local: the embedded stack; gcp-emulated: the GCP adapters and SDKs on Google's emulators and local "
        "stand-ins of Vertex AI, Cloud Build, Cloud Storage and GitHub (needs gcloud's emulators and Java)",
    )
    demo.add_argument(
        "--sweep", action="store_true", help="the sweep variant (local profile): a handful of trials, the best promoted"
    )
    demo.add_argument(
        "--environments",
        action="store_true",
        help="the environments variant: two models climb staging then production, production rolls back alone",
    )
    demo.set_defaults(func=cmd_demo)
    runs = sub.add_parser("runs", help="list runs, or `runs show RUN` for one with its timeline")
    runs.add_argument("action", nargs="?", choices=["list", "show"], default="list", help="list (default) or show one")
    runs.add_argument(
        "run_id", nargs="?", help="the run to show (its id, as `runs` lists it; default: the newest, of --pipeline)"
    )
    runs.add_argument("--pipeline", help="only runs of this pipeline")
    runs.add_argument(
        "--limit",
        type=page_limit,
        default=20,
        help=f"at most this many runs, newest first (default 20, at most {MAX_PAGE})",
    )
    runs.add_argument("--before", metavar="RUN", help="the page after this run (the last one listed), for older runs")
    runs.add_argument("--json", action="store_true", help="machine-readable output")
    runs.set_defaults(func=cmd_runs)
    simulate.add_parser(sub)
    launch_queue.add_parser(sub)
    gc.add_parser(sub)
    inbox = sub.add_parser("inbox", help="list inbound deliveries (or dead letters), newest first")
    inbox.add_argument("--dead", action="store_true", help="dead letters instead of deliveries")
    inbox.add_argument(
        "--source",
        help="only this source: github, wandb, drift, schedule, retrain, cloudbuild, vertex (--dead: also "
        "the commands topic, relaunch-commands)",
    )
    inbox.add_argument("--limit", type=int, default=20, help="at most this many rows, newest first (default 20)")
    inbox.add_argument("--json", action="store_true", help="machine-readable output")
    inbox.set_defaults(func=cmd_inbox)
    replay = sub.add_parser("replay", help="re-drive one inbox delivery by its key")
    replay.add_argument("key", help="the delivery's inbox key, as `relaunch inbox` lists it")
    replay.add_argument(
        "--force",
        action="store_true",
        help="run a GitHub delivery's runs again even if runs of the same commit exist (a push's content dedupe)",
    )
    replay.set_defaults(func=cmd_replay)
    rollback = sub.add_parser("rollback", help="move a pipeline's traffic and champion back to the previous model")
    rollback.add_argument("pipeline", help="the pipeline whose latest rollout is undone")
    rollback.add_argument("--env", help="the environment to roll back (default: the last, e.g. production)")
    rollback.set_defaults(func=cmd_rollback)
    approvals.add_parser(sub)
    environments.add_parser(sub)
    lineage.add_parser(sub)
    doctor = sub.add_parser("doctor", help="check the configuration and say exactly what is missing (no side effects)")
    doctor.set_defaults(func=cmd_doctor)
    cost = sub.add_parser("cost", help="GPU-hours and USD per pipeline and trigger kind, and what coalescing saved")
    cost.add_argument("--pipeline", help="only this pipeline")
    cost.add_argument("--json", action="store_true", help="machine-readable output")
    cost.set_defaults(func=cmd_cost)
    _deploy_parser(sub)
    return p


def _deploy_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    deploy = sub.add_parser("deploy", help="create what a triggers file declares on Google Cloud (idempotent)")
    deploy.add_argument("--file", type=Path, default=Path("triggers/relaunch.yaml"), help="the triggers file")
    deploy.add_argument("--dry-run", action="store_true", help="print the commands in order and change nothing")
    deploy.add_argument("--pipelines-dir", type=Path, help="pipeline specs (default: RELAUNCH_PIPELINES_DIR)")
    deploy.set_defaults(func=cmd_deploy)


def cmd_deploy(args: argparse.Namespace) -> int:
    """Print (--dry-run) or apply the deploy plan of a triggers file."""
    from relaunch.deploy import deploy

    pipelines_dir = args.pipelines_dir or Settings().pipelines_dir
    return deploy(args.file, dry_run=args.dry_run, pipelines_dir=pipelines_dir)


def cmd_doctor(args: argparse.Namespace) -> int:
    """Report how the configuration stands; exit 1 when something required is missing."""
    from relaunch.doctor import diagnose, render

    findings = diagnose(Settings())
    print(render(findings))
    return 1 if any(f.level == "missing" for f in findings) else 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo scenario."""
    from relaunch.demo import run_demo

    if args.environments and (args.sweep or args.profile != "local"):
        print("relaunch demo: --environments runs alone, on the local profile", file=sys.stderr)
        return 2
    if args.sweep and args.profile != "local":  # Vertex's tuning jobs are tested at the HTTP boundary instead
        print("relaunch demo: --sweep runs on the local profile", file=sys.stderr)
        return 2
    without_secrets_in_environment(args)
    if args.environments:
        from relaunch.demo_environments import run_environments_demo

        return run_environments_demo(home=args.home)
    if args.profile == "gcp-emulated":
        from relaunch.emulated.demo_gcp import run_gcp_demo

        if args.home is not None:
            print("relaunch demo: --home applies to the local profile only", file=sys.stderr)
            return 2
        return run_gcp_demo()
    if args.sweep:
        from relaunch.demo_sweep import run_sweep_demo

        return run_sweep_demo(home=args.home)
    return run_demo(home=args.home)


def cmd_replay(args: argparse.Namespace) -> int:
    """Re-drive one delivery through the service."""
    from relaunch import bootstrap
    from relaunch.service.ingest import UnknownDelivery
    from relaunch.triggers.errors import TriggerError

    settings = Settings()
    if no_store_yet(settings):
        print(f"relaunch: no inbox: {settings.store_path} does not exist", file=sys.stderr)
        return 1
    try:
        reply = bootstrap.App(settings).ingest.replay(args.key, force=args.force)
    except (UnknownDelivery, ValueError) as exc:
        print(f"relaunch: {safe_line(str(exc.args[0]))}", file=sys.stderr)
        return 1
    except TriggerError as exc:
        key, message, field = safe_line(args.key), safe_line(exc.message), safe_line(exc.field)
        print(f"relaunch: cannot replay {key}: {message} (field {field})", file=sys.stderr)
        return 1
    print(f"{reply.status} {json.dumps(reply.body, sort_keys=True)}")  # ensure_ascii: escapes every control
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    """Undo a pipeline's latest rollout: abort one in progress, or put the previous champion back."""
    from relaunch import bootstrap
    from relaunch.service.rollout_step import NothingToRollBack

    settings = Settings()
    if settings.adapter("endpoint") == "local":  # the running stack's endpoint server
        settings = settings.model_copy(update={"endpoint_url": running_url(settings, "endpoint")})
    app = bootstrap.App(settings)
    try:
        run = app.orchestrator.roll_back(args.pipeline, args.env)
    except NothingToRollBack as exc:
        print(f"relaunch: nothing to roll back: {safe_line(exc)}", file=sys.stderr)
        return 1
    except ValueError as exc:  # the endpoint or the registry refused
        print(f"relaunch: rollback of {safe_line(args.pipeline)} refused: {safe_line(exc)}", file=sys.stderr)
        return 1
    champion = app.registry.champion(args.pipeline)
    print(f"{safe_line(run.id)}: {safe_line(run.reason)}")
    print(f"champion: {safe_line(champion.version) if champion else 'none'}")
    return 0
