"""`relaunch gc`: apply the retention policy now (RELAUNCH_RETAIN_*), or with --dry-run say what it would delete."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from relaunch.settings import Settings
from relaunch.textsafe import safe_line

if TYPE_CHECKING:
    from relaunch.service.gc import GcReport


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `gc`."""
    gc = sub.add_parser(
        "gc",
        help="delete old run folders, inbox bodies and model versions the retention policy no longer keeps",
        description="Keeps the folders of runs in flight and of the RELAUNCH_RETAIN_WORKSPACES newest finished runs,"
        " inbox bodies for RELAUNCH_RETAIN_BODY_DAYS days (the rows stay), and per pipeline the"
        " RELAUNCH_RETAIN_VERSIONS newest versions plus the champion, every deployed version and the rollback target.",
    )
    gc.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    gc.add_argument("--json", action="store_true", help="print the outcome as one JSON object")
    gc.set_defaults(func=cmd_gc)


def cmd_gc(args: argparse.Namespace) -> int:
    """One housekeeping pass; exit 1 if part of it could not run (the rest still did)."""
    from relaunch.bootstrap import App
    from relaunch.housekeeping import housekeeping

    settings = Settings()
    if settings.adapter("store") == "sqlite" and not settings.store_path.exists():
        print(f"relaunch: gc: nothing to collect: {settings.store_path} does not exist", file=sys.stderr)
        return 1
    report = housekeeping(App(settings)).collect(dry_run=args.dry_run)
    if args.json:
        print(json.dumps(as_json(report), sort_keys=True))
    else:
        print_report(report)
    return 1 if report.errors else 0


def as_json(report: GcReport) -> dict[str, object]:
    """The report as plain values."""
    removals = [{"kind": r.kind, "name": r.name, "bytes": r.size, "reason": r.reason} for r in report.removals]
    return {
        "dry_run": report.dry_run,
        "removals": removals,
        "freed_bytes": report.freed,
        "kept": report.kept,
        "errors": report.errors,
    }


def print_report(report: GcReport) -> None:
    """A table of the removals, then what was kept on purpose, then the total."""
    from relaunch.cli import render
    from relaunch.cli.terminal import show
    from relaunch.service.gc import human_bytes

    if report.removals:
        show(render.removals_table(report.removals, "WOULD DELETE" if report.dry_run else "DELETED"))
    for line in report.kept:
        print(f"kept: {safe_line(line)}")
    for line in report.errors:
        print(f"relaunch: gc: {safe_line(line)}", file=sys.stderr)
    total = f"{len(report.removals)} item{'s' if len(report.removals) != 1 else ''}, {human_bytes(report.freed)}"
    print(f"{'would free' if report.dry_run else 'freed'} {total}" if report.removals else "nothing to collect")
