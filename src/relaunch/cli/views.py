"""The reading commands: `relaunch runs [show]`, `inbox` and `cost`. Each reads the store, hands the data to
relaunch.cli.render and prints the result (or, with --json, the exact records).

Registering the parsers imports this module: what a command reads and renders with (the store, rich) is imported by
the command, and rich only when it prints a table.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from relaunch.settings import Settings
from relaunch.textsafe import safe_line

if TYPE_CHECKING:
    from relaunch import bootstrap
    from relaunch.domain import cost

MAX_PAGE = 1000  # runs per page: what one look can take in; older ones are a `--before` away


def page_limit(value: str) -> int:
    """A page size, 1 to MAX_PAGE (a store reads LIMIT -1 as "everything")."""
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise argparse.ArgumentTypeError(f"{value[:40]!r} is not a whole number from 1 to {MAX_PAGE}")
    return int(value)


def no_store_yet(settings: Settings) -> bool:
    """The embedded store's file does not exist: nothing was ever recorded here (and reading must not create it)."""
    return settings.adapter("store") == "sqlite" and not settings.store_path.exists()


def cmd_runs(args: argparse.Namespace) -> int:
    """List runs or show one."""
    settings = Settings()
    if no_store_yet(settings):
        print(f"no runs yet: {settings.store_path} does not exist (set RELAUNCH_HOME to a stack's state folder)")
        return 0 if args.action == "list" else 1
    from relaunch import bootstrap

    app = bootstrap.App(settings)
    if args.action == "show":
        run_id = args.run_id or _newest(app, args.pipeline)
        if run_id is None:
            print(f"relaunch: no runs{f' of pipeline {safe_line(args.pipeline)}' if args.pipeline else ''} yet")
            return 1
        return _show_run(app, run_id, as_json=args.json)
    try:  # one more than the page: whether older runs exist, without counting them
        runs = app.store.list_runs(pipeline=args.pipeline, limit=args.limit + 1, before=args.before)
    except KeyError:
        print(f"relaunch: no run {safe_line(args.before)!r} to list the runs before", file=sys.stderr)
        return 1
    runs, more = runs[: args.limit], len(runs) > args.limit
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in runs], indent=2))
        return 0
    from relaunch.cli import render
    from relaunch.cli.terminal import show
    from relaunch.domain import cost
    from relaunch.service import ledger

    prices = _prices_or_none(settings)
    costs = {}
    for run in runs:
        entry = ledger.of_run(app.store, run.id)
        if entry is not None and prices is not None:
            costs[run.id] = cost.entry_cost(entry, prices)
    show(render.runs_table(runs, costs))
    if more:  # on stderr: stdout stays the table alone
        pipeline = f" --pipeline {safe_line(args.pipeline)}" if args.pipeline else ""
        print(f"older runs: relaunch runs{pipeline} --limit {args.limit} --before {runs[-1].id}", file=sys.stderr)
    return 0


def _newest(app: bootstrap.App, pipeline: str | None) -> str | None:
    """`runs show` with no id: the newest run (of `pipeline`), as `git show` shows HEAD."""
    newest = app.store.list_runs(pipeline=pipeline, limit=1)
    return newest[0].id if newest else None


def _show_run(app: bootstrap.App, run_id: str, *, as_json: bool) -> int:
    run = app.store.get_run(run_id)
    if run is None:
        return _show_skip(app, run_id, as_json=as_json)
    timeline = app.store.timeline(run_id)
    if as_json:
        data = {"run": run.model_dump(mode="json"), "timeline": [e.model_dump(mode="json") for e in timeline]}
        print(json.dumps(data, indent=2))
        return 0
    from relaunch.bootstrap.wandb_facts import wandb_facts
    from relaunch.cli import render
    from relaunch.cli.terminal import show
    from relaunch.domain import cost
    from relaunch.domain.effects import Effect
    from relaunch.service import ledger

    entry = ledger.of_run(app.store, run.id)
    prices = _prices_or_none(app.settings)
    spend = cost.entry_cost(entry, prices) if entry is not None and prices is not None else None
    synced = app.store.get_effect(run.id, Effect.WANDB_SYNC)
    show(render.run_detail(run, timeline, entry, spend, wandb_facts(app.artifact_root, run, synced)))
    return 0


def _show_skip(app: bootstrap.App, run_id: str, *, as_json: bool) -> int:
    """The id of a pipeline a delivery skipped at ingest (its "skipped" status names it): the skip, not "no run"."""
    from relaunch.service.ingest_skips import skipped_at_ingest

    skipped = skipped_at_ingest(app.store, run_id)
    if skipped is None:
        print(f"relaunch: no run {safe_line(run_id)!r}", file=sys.stderr)
        return 1
    timeline = app.store.timeline(run_id)  # the statuses posted for the skip, as the embedded notifier records them
    if as_json:
        about = {"pipeline": skipped.pipeline, "delivery": skipped.delivery.key, "reason": skipped.reason}
        entries = [e.model_dump(mode="json") for e in timeline]
        print(json.dumps({"run": None, "skipped": about, "timeline": entries}, indent=2))
        return 0
    print(safe_line(skipped.summary))
    for entry in timeline:
        print(f"  {safe_line(entry.kind)}  {safe_line(entry.message)}")
    return 0


def _prices_or_none(settings: Settings) -> cost.PriceTable | None:
    """The price table; a broken price file costs the listing its cost column (said once), not the listing."""
    from relaunch.config_files import load_prices

    try:
        return load_prices(settings.price_file)
    except ValueError as exc:
        print(f"relaunch: RELAUNCH_PRICE_FILE: {safe_line(exc)}; costs not shown", file=sys.stderr)
        return None


def inbox_sources(settings: Settings, *, dead: bool) -> list[str]:
    """The names `inbox --source` knows: each delivery source; dead letters also carry the commands topic's name."""
    from relaunch.domain.model import Source

    names = [source.value for source in Source]
    return [*names, settings.pubsub_commands_topic] if dead else names


def cmd_inbox(args: argparse.Namespace) -> int:
    """List deliveries or dead letters, newest first."""
    settings = Settings()
    known = inbox_sources(settings, dead=args.dead)
    if args.source is not None and args.source not in known:
        print(f"relaunch inbox: no source {args.source!r}; sources: {', '.join(known)}", file=sys.stderr)
        return 2
    if no_store_yet(settings):
        print(f"no deliveries yet: {settings.store_path} does not exist")
        return 0
    from relaunch import bootstrap

    store = bootstrap.App(settings).store
    if args.dead:
        dead = store.list_dead_letters(args.limit, source=args.source)
        if args.json:
            print(json.dumps([r.model_dump(mode="json") for r in dead], indent=2))
        else:
            from relaunch.cli import render
            from relaunch.cli.terminal import show

            show(render.dead_letters_table(dead))
        return 0
    rows = store.list_deliveries(args.limit, source=args.source)
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
    else:
        from relaunch.cli import render
        from relaunch.cli.terminal import show

        show(render.deliveries_table(rows))
    return 0


def cmd_cost(args: argparse.Namespace) -> int:
    """Summarise the cost ledger with the price table (RELAUNCH_PRICE_FILE overrides the built-in prices)."""
    from relaunch import bootstrap
    from relaunch.config_files import load_prices
    from relaunch.domain import cost
    from relaunch.service import ledger

    settings = Settings()
    try:
        prices = load_prices(settings.price_file)
    except ValueError as exc:
        print(f"relaunch: RELAUNCH_PRICE_FILE: {safe_line(exc)}", file=sys.stderr)
        return 2
    entries = [] if no_store_yet(settings) else ledger.read(bootstrap.App(settings).store, args.pipeline)
    summary = cost.summarize(entries, prices)
    if args.json:  # json.dumps, not model_dump_json: it escapes every non-ASCII character
        print(json.dumps(summary.model_dump(mode="json"), indent=2))
    else:
        from relaunch.cli import render
        from relaunch.cli.terminal import show

        show(render.cost_view(summary))
    return 0
