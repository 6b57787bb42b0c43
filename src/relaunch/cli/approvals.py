"""`relaunch approve RUN` and `relaunch reject RUN --reason ...`: the operator's verdict on a run awaiting approval.

The operator at this terminal already holds the store, so no permission is asked: the verdict is recorded (the
first one stands) and the run is nudged on the commands topic; the orchestrator builds it (a fork's pull request),
rolls it out (a gated run), or ends it rejected.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time

from relaunch.cli.views import no_store_yet
from relaunch.settings import Settings
from relaunch.textsafe import safe_line

MAX_REASON = 500  # a reason is shown on a commit status (140) and in Slack: longer is an essay, not a reason


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `approve` and `reject`."""
    approve = sub.add_parser(
        "approve",
        help="let a run awaiting approval go on: build a fork's PR, roll out a gated run, enter an environment",
    )
    approve.add_argument("run_id", help="the run awaiting approval, as `relaunch runs` lists it")
    approve.set_defaults(func=cmd_approve)
    reject = sub.add_parser("reject", help="refuse a run awaiting approval: it ends rejected, with your reason")
    reject.add_argument("run_id", help="the run awaiting approval, as `relaunch runs` lists it")
    reject.add_argument("--reason", required=True, help="why (shown on the timeline, the commit status and Slack)")
    reject.set_defaults(func=cmd_reject)


def cmd_approve(args: argparse.Namespace) -> int:
    """Approve the run's wait, as the OS user at this terminal; the stack then builds or rolls it out."""
    return _decide(args, None)


def cmd_reject(args: argparse.Namespace) -> int:
    """Reject the run's wait with a reason; the stack then ends it rejected."""
    reason = " ".join(str(args.reason).split())
    if not reason or len(reason) > MAX_REASON or safe_line(reason) != reason:
        print(f"relaunch: --reason must be 1 to {MAX_REASON} printable characters", file=sys.stderr)
        return 2
    return _decide(args, reason)


def _decide(args: argparse.Namespace, rejection: str | None) -> int:
    from relaunch import bootstrap
    from relaunch.domain.approval import awaited, awaited_environment
    from relaunch.domain.commands import StartRun
    from relaunch.service.approval_step import NotAwaiting, approve_by_operator, reject_by_operator

    settings = Settings()
    if no_store_yet(settings):
        print(f"relaunch: no runs: {settings.store_path} does not exist", file=sys.stderr)
        return 1
    app = bootstrap.App(settings)
    command = "relaunch approve" if rejection is None else "relaunch reject"
    by, now = f"{_os_user()} ({command})", time.time()
    try:
        if rejection is None:
            run = approve_by_operator(app.store, args.run_id, by=by, at=now)
        else:
            run = reject_by_operator(app.store, args.run_id, by=by, reason=rejection, at=now)
    except NotAwaiting as exc:
        print(f"relaunch: {safe_line(str(exc.args[0]))}", file=sys.stderr)
        return 1
    app.bus.publish(settings.pubsub_commands_topic, StartRun(run_id=run.id).model_dump(), {"run_id": run.id})
    next_step = {"build": "it builds next", "promotion": "it rolls out next"}.get(awaited(run), "")
    next_step = next_step or f"it enters {awaited_environment(run)} next"
    said = f"approved for {run.trigger.sha}; {next_step}" if rejection is None else f"rejected: {rejection}"
    print(f"{run.id}: {said}")
    return 0


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (a bare container)
        return "unknown OS user"
