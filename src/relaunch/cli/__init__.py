"""The `relaunch` command line: up, demo, runs, simulate, inbox, replay, rollback, approve, doctor, cost, deploy,
launch-queue."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from pydantic import ValidationError

from relaunch import bootstrap
from relaunch.cli import launch_queue, simulate
from relaunch.cli.running import running_url, secret_file
from relaunch.domain.spec import SpecError
from relaunch.settings import Settings
from relaunch.textsafe import safe_block, safe_line


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
    except ValidationError as exc:  # a RELAUNCH_* variable with a wrong value
        fields = "; ".join(f"RELAUNCH_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        print(f"relaunch: invalid configuration: {fields}", file=sys.stderr)
        return 2
    except SpecError as exc:
        print(f"relaunch: invalid pipeline spec: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # the stack could not start (already running, a function exited, …)
        print(f"relaunch: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader stopped early (`relaunch runs show ID | head`): nothing more to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not raise again
        return 141  # 128 + SIGPIPE, as a shell reports a writer whose pipe closed


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="relaunch", description="Event-driven retraining, evaluation and promotion.")
    sub = p.add_subparsers(metavar="COMMAND")
    up = sub.add_parser("up", help="run the embedded stack in the foreground")
    up.set_defaults(func=cmd_up)
    demo = sub.add_parser("demo", help="run the whole loop on a throwaway repo and print its timeline")
    demo.add_argument("--home", type=Path, help="keep the stack's state here instead of a temporary folder")
    demo.add_argument(
        "--profile",
        choices=["local", "gcp-emulated"],
        default="local",
        help="local: the embedded stack; gcp-emulated: the GCP adapters and SDKs on Google's emulators and local "
        "stand-ins of Vertex AI, Cloud Build, Cloud Storage and GitHub (needs gcloud's emulators and Java)",
    )
    demo.set_defaults(func=cmd_demo)
    runs = sub.add_parser("runs", help="list runs, or `runs show RUN` for one with its timeline")
    runs.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    runs.add_argument("run_id", nargs="?")
    runs.add_argument("--pipeline")
    runs.add_argument("--limit", type=int, default=20)
    runs.add_argument("--json", action="store_true", help="machine-readable output")
    runs.set_defaults(func=cmd_runs)
    simulate.add_parser(sub)
    launch_queue.add_parser(sub)
    inbox = sub.add_parser("inbox", help="list inbound deliveries (or dead letters), newest first")
    inbox.add_argument("--dead", action="store_true", help="dead letters instead of deliveries")
    inbox.add_argument(
        "--source",
        help="only this source: github, wandb, drift, schedule, retrain, cloudbuild, vertex (--dead: also "
        "the commands topic, relaunch-commands)",
    )
    inbox.add_argument("--limit", type=int, default=20)
    inbox.add_argument("--json", action="store_true", help="machine-readable output")
    inbox.set_defaults(func=cmd_inbox)
    replay = sub.add_parser("replay", help="re-drive one inbox delivery by its key")
    replay.add_argument("key")
    replay.add_argument(
        "--force",
        action="store_true",
        help="run a GitHub delivery's runs again even if runs of the same commit exist (a push's content dedupe)",
    )
    replay.set_defaults(func=cmd_replay)
    rollback = sub.add_parser("rollback", help="move a pipeline's traffic and champion back to the previous model")
    rollback.add_argument("pipeline")
    rollback.set_defaults(func=cmd_rollback)
    approve = sub.add_parser("approve", help="let a run awaiting approval (a fork's pull request) build its head")
    approve.add_argument("run_id")
    approve.set_defaults(func=cmd_approve)
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


def cmd_cost(args: argparse.Namespace) -> int:
    """Summarise the cost ledger with the price table (RELAUNCH_PRICE_FILE overrides the built-in prices)."""
    from relaunch.config_files import load_prices
    from relaunch.domain import cost
    from relaunch.service import ledger

    settings = Settings()
    try:
        prices = load_prices(settings.price_file)
    except ValueError as exc:
        print(f"relaunch: RELAUNCH_PRICE_FILE: {exc}", file=sys.stderr)
        return 2
    if _no_store_yet(settings):
        entries = []
    else:
        entries = ledger.read(bootstrap.App(settings).store, args.pipeline)
    summary = cost.summarize(entries, prices)
    if args.json:  # json.dumps, not model_dump_json: it escapes every non-ASCII character
        print(json.dumps(summary.model_dump(mode="json"), indent=2))
    else:
        print(safe_block(cost.render(summary)), end="")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """Start the embedded stack and wait for Ctrl-C."""
    signal.signal(signal.SIGTERM, _interrupt)  # before anything starts, so a SIGTERM always stops what started
    _without_secrets_in_environment(args)
    stack = bootstrap.embedded_stack(bootstrap.with_local_secrets(Settings()))
    try:
        stack.start()
        print(f"relaunch embedded stack, state in {stack.settings.home}")
        for name, url in stack.urls.items():
            print(f"  {name:16} {url}")
        print(f"  webhook secret   in {secret_file(stack.settings)}\nCtrl-C stops.", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_doctor(args: argparse.Namespace) -> int:
    """Report how the configuration stands; exit 1 when something required is missing."""
    from relaunch.doctor import diagnose, render

    findings = diagnose(Settings())
    print(render(findings))
    return 1 if any(f.level == "missing" for f in findings) else 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo scenario."""
    from relaunch.demo import run_demo

    _without_secrets_in_environment(args)
    if args.profile == "gcp-emulated":
        from relaunch.emulated.demo_gcp import run_gcp_demo

        if args.home is not None:
            print("relaunch demo: --home applies to the local profile only", file=sys.stderr)
            return 2
        return run_gcp_demo()
    return run_demo(home=args.home)


def _without_secrets_in_environment(args: argparse.Namespace) -> None:
    """Re-execute once with the configured secrets moved from this process's environment into memory."""
    # The stack is an ancestor of every job, and /proc/<pid>/environ keeps what exec got for the process's life.
    from relaunch.handoff import reexec_without_secrets, take_handed_secrets
    from relaunch.settings import secret_fields

    os.umask(0o077)  # every state file 0600, every folder 0700, in this process and all it starts
    reexec_without_secrets(secret_fields(), args.exec_argv)
    take_handed_secrets()  # close the descriptor now: nothing this process starts may inherit it


def cmd_runs(args: argparse.Namespace) -> int:
    """List runs or show one."""
    settings = Settings()
    if _no_store_yet(settings):
        print(f"no runs yet: {settings.store_path} does not exist (set RELAUNCH_HOME to a stack's state folder)")
        return 0 if args.action == "list" else 1
    app = bootstrap.App(settings)
    if args.action == "show":
        if not args.run_id:
            print("relaunch: `runs show` needs a RUN id", file=sys.stderr)
            return 2
        return _show_run(app, args.run_id, as_json=args.json)
    runs = app.store.list_runs(pipeline=args.pipeline, limit=args.limit)
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in runs], indent=2))
        return 0
    print(f"{'RUN':24} {'PIPELINE':12} {'STATE':12} {'TRIGGER':8} {'COMMIT':8} {'MODEL':6} {'CREATED':19}")
    for r in runs:
        created = dt.datetime.fromtimestamp(r.created_at).strftime("%Y-%m-%d %H:%M:%S")
        run_id, pipeline, kind = safe_line(r.id), safe_line(r.pipeline), safe_line(r.trigger.kind)
        sha, model = safe_line((r.trigger.sha or "")[:7]), safe_line(r.model_version or "-")
        print(f"{run_id:24} {pipeline:12} {r.state.value:12} {kind:8} {sha:8} {model:6} {created}")
    return 0


def _show_run(app: bootstrap.App, run_id: str, *, as_json: bool) -> int:
    run = app.store.get_run(run_id)
    if run is None:
        print(f"relaunch: no run {run_id!r}", file=sys.stderr)
        return 1
    timeline = app.store.timeline(run_id)
    if as_json:
        data = {"run": run.model_dump(mode="json"), "timeline": [e.model_dump(mode="json") for e in timeline]}
        print(json.dumps(data, indent=2))
        return 0
    t = run.trigger
    print(f"{safe_line(run.id)}  {safe_line(run.pipeline)}  {run.state.value}  {safe_line(run.reason)}")
    by = f" by {safe_line(t.actor)}" if t.actor else ""
    print(f"trigger: {' '.join(safe_line(v) for v in (t.kind, t.repo, t.ref, t.sha))}{by}")
    if run.model_version:
        print(f"model: {safe_line(run.model_version)}")
    for entry in timeline:
        at = dt.datetime.fromtimestamp(entry.at).strftime("%H:%M:%S.%f")[:-3]
        print(f"  {at}  {safe_line(entry.kind):17} {safe_line(entry.message)}")
    return 0


def _inbox_sources(settings: Settings, *, dead: bool) -> list[str]:
    """The names `inbox --source` knows: each delivery source; dead letters also carry the commands topic's name."""
    from relaunch.domain.model import Source

    names = [source.value for source in Source]
    return [*names, settings.pubsub_commands_topic] if dead else names


def cmd_inbox(args: argparse.Namespace) -> int:
    """List deliveries or dead letters, newest first."""
    settings = Settings()
    known = _inbox_sources(settings, dead=args.dead)
    if args.source is not None and args.source not in known:
        print(f"relaunch inbox: no source {args.source!r}; sources: {', '.join(known)}", file=sys.stderr)
        return 2
    if _no_store_yet(settings):
        print(f"no deliveries yet: {settings.store_path} does not exist")
        return 0
    store = bootstrap.App(settings).store
    window = args.limit if args.source is None else max(args.limit, 1000)  # the port filters by nothing but count
    if args.dead:
        dead = [r for r in store.list_dead_letters(window) if args.source in (None, r.source)][: args.limit]
        if args.json:
            print(json.dumps([r.model_dump(mode="json") for r in dead], indent=2))
            return 0
        for d in dead:
            at = dt.datetime.fromtimestamp(d.at).strftime("%Y-%m-%d %H:%M:%S")
            print(f"{at}  {safe_line(d.id):>5} {safe_line(d.source):10} {safe_line(d.reason[:100])}")
        return 0
    rows = [r for r in store.list_deliveries(window) if args.source in (None, r.source)][: args.limit]
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return 0
    for r in rows:
        at = dt.datetime.fromtimestamp(r.received_at).strftime("%Y-%m-%d %H:%M:%S")
        outcome, runs = safe_line(r.outcome[:60]), safe_line(" ".join(r.run_ids))
        print(f"{at}  {safe_line(r.source):10} {safe_line(r.key):44} {outcome:60} {runs}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Re-drive one delivery through the service."""
    from relaunch.service.ingest import UnknownDelivery
    from relaunch.triggers.errors import TriggerError

    settings = Settings()
    if _no_store_yet(settings):
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
    from relaunch.service.rollout_step import NothingToRollBack

    settings = Settings()
    if settings.adapter("endpoint") == "local":  # the running stack's endpoint server
        settings = settings.model_copy(update={"endpoint_url": running_url(settings, "endpoint")})
    app = bootstrap.App(settings)
    try:
        run = app.orchestrator.roll_back(args.pipeline)
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


def cmd_approve(args: argparse.Namespace) -> int:
    """Approve a fork's run for its head commit, as the OS user at this terminal; the stack then builds it."""
    from relaunch.domain.commands import StartRun
    from relaunch.service.approval_step import NotAwaiting, approve_by_operator

    settings = Settings()
    if _no_store_yet(settings):
        print(f"relaunch: no runs: {settings.store_path} does not exist", file=sys.stderr)
        return 1
    app = bootstrap.App(settings)
    try:
        run = approve_by_operator(app.store, args.run_id, by=f"{_os_user()} (relaunch approve)", at=time.time())
    except NotAwaiting as exc:
        print(f"relaunch: {exc.args[0]}", file=sys.stderr)
        return 1
    app.bus.publish(settings.pubsub_commands_topic, StartRun(run_id=run.id).model_dump(), {"run_id": run.id})
    print(f"{run.id}: approved for {run.trigger.sha}; it builds next")
    return 0


def _no_store_yet(settings: Settings) -> bool:
    """The embedded store's file does not exist: nothing was ever recorded here (and reading must not create it)."""
    return settings.adapter("store") == "sqlite" and not settings.store_path.exists()


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (a bare container)
        return "unknown OS user"
