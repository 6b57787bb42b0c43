"""The `relaunch` command line: up, demo, runs, simulate."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import signal
import sys
import threading
from pathlib import Path

from pydantic import SecretStr, ValidationError

from relaunch import bootstrap
from relaunch.pipelines.spec import SpecError
from relaunch.settings import Settings


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="relaunch", description="Event-driven retraining, evaluation and promotion.")
    sub = p.add_subparsers(metavar="COMMAND")
    up = sub.add_parser("up", help="run the embedded stack in the foreground")
    up.set_defaults(func=cmd_up)
    demo = sub.add_parser("demo", help="run the whole loop on a throwaway repo and print its timeline")
    demo.add_argument("--home", type=Path, help="keep the stack's state here instead of a temporary folder")
    demo.set_defaults(func=cmd_demo)
    runs = sub.add_parser("runs", help="list runs, or `runs show RUN` for one with its timeline")
    runs.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    runs.add_argument("run_id", nargs="?")
    runs.add_argument("--pipeline")
    runs.add_argument("--limit", type=int, default=20)
    runs.add_argument("--json", action="store_true", help="machine-readable output")
    runs.set_defaults(func=cmd_runs)
    sim = sub.add_parser("simulate", help="send a correctly signed, real-format event to the running stack")
    sim.add_argument("kind", choices=["push"])
    sim.add_argument("--repo-dir", type=Path, required=True, help="local git repository whose HEAD is pushed")
    sim.add_argument("--full-name", required=True, help="owner/name the push claims to come from")
    sim.add_argument("--branch", default="main")
    sim.add_argument("--before", help="previous head (default: a new branch)")
    sim.set_defaults(func=cmd_simulate)
    return p


def cmd_up(args: argparse.Namespace) -> int:
    """Start the embedded stack and wait for Ctrl-C."""
    signal.signal(signal.SIGTERM, _interrupt)  # before anything starts, so a SIGTERM always stops what started
    stack = bootstrap.embedded_stack(_with_secret(Settings()))
    try:
        stack.start()
        print(f"relaunch embedded stack, state in {stack.settings.home}")
        for name, url in stack.urls.items():
            print(f"  {name:16} {url}")
        print(f"  webhook secret   in {_secret_file(stack.settings)}\nCtrl-C stops.", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo scenario."""
    from relaunch.demo import run_demo

    return run_demo(home=args.home)


def cmd_runs(args: argparse.Namespace) -> int:
    """List runs or show one."""
    settings = Settings()
    if not settings.store_path.exists():
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
        sha = (r.trigger.sha or "")[:7]
        model = r.model_version or "-"
        print(f"{r.id:24} {r.pipeline:12} {r.state.value:12} {r.trigger.kind:8} {sha:8} {model:6} {created}")
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
    print(f"{run.id}  {run.pipeline}  {run.state.value}  {run.reason}")
    print(f"trigger: {run.trigger.kind} {run.trigger.repo} {run.trigger.ref} {run.trigger.sha}")
    if run.model_version:
        print(f"model: {run.model_version}")
    for entry in timeline:
        at = dt.datetime.fromtimestamp(entry.at).strftime("%H:%M:%S.%f")[:-3]
        print(f"  {at}  {entry.kind:17} {entry.message}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """Send a signed push for a local repository's HEAD to the running stack."""
    from relaunch.simulate import push_payload, send_github

    settings = Settings()
    url = _running_url(settings, "github_webhook")
    payload = push_payload(args.repo_dir, full_name=args.full_name, branch=args.branch, before=args.before)
    reply = send_github(url, "push", payload, _with_secret(settings).webhook_secret() or "")
    print(f"{reply.status_code} {reply.text}")
    return 0 if reply.ok else 1


def _running_url(settings: Settings, name: str) -> str:
    state = settings.home / "stack.json"
    if not state.exists():
        raise SystemExit(f"relaunch: no running stack in {settings.home} (start one with `relaunch up`)")
    return str(json.loads(state.read_text())["urls"][name])


def _secret_file(settings: Settings) -> Path:
    return settings.home / "github_webhook_secret"


def _with_secret(settings: Settings) -> Settings:
    """Use the configured webhook secret, else the stack's own (made once, readable only by you)."""
    if settings.webhook_secret():
        return settings
    path = _secret_file(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return settings.model_copy(update={"github_webhook_secret": SecretStr(path.read_text().strip())})


if __name__ == "__main__":
    sys.exit(main())
