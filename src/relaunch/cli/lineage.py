"""`relaunch lineage PIPELINE [ENV|VERSION]` and `relaunch lineage --commit SHA`.

Back: what an environment serves (or a version) -> the run that made it, its commit and its data version. Forward: a
commit -> every run of it, the model each made and where each is served now. The walk is domain/lineage.py; this
reads the store's runs and promotion records, and each run's recorded data version (bootstrap/run_files.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from relaunch.cli.views import no_store_yet
from relaunch.settings import Settings
from relaunch.textsafe import safe_line

if TYPE_CHECKING:
    from relaunch import bootstrap
    from relaunch.domain.environments import PromotionRecord
    from relaunch.domain.lineage import Origin
    from relaunch.domain.model import PipelineRun

WINDOW = 1000  # runs and promotion records read per pipeline: the walk looks no further back


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `lineage`."""
    lineage = sub.add_parser("lineage", help="where a served model came from, or every model a commit produced")
    lineage.add_argument("pipeline", nargs="?", help="the pipeline, as its spec names it")
    lineage.add_argument("target", nargs="?", help="an environment (what it serves) or a version; default: each one")
    lineage.add_argument("--commit", help="walk forward from this commit (full SHA or 7+ digits) instead")
    lineage.add_argument("--json", action="store_true", help="print the origins as JSON")
    lineage.set_defaults(func=cmd_lineage)


def cmd_lineage(args: argparse.Namespace) -> int:
    """Print the origins asked for; exit 1 with one line on stderr when there are none to walk."""
    from relaunch import bootstrap
    from relaunch.domain.lineage import back, forward
    from relaunch.domain.ports import PromotionHistory

    if (args.commit is None) == (args.pipeline is None):
        return _fail("give a pipeline (and an environment or version) or --commit SHA, not both or neither")
    settings = Settings()
    if no_store_yet(settings):
        return _fail(f"no runs yet: {settings.store_path} does not exist")
    app = bootstrap.App(settings)
    store = app.store
    if not isinstance(store, PromotionHistory):
        return _fail(f"the {settings.adapter('store')} store keeps no promotion history")
    specs = app.specs()
    try:
        if args.commit is not None:
            runs = store.list_runs(None, limit=WINDOW)
            records = [r for name in specs for r in store.promotions(name, None, limit=WINDOW)]
            origins = forward(args.commit, runs, records, _data(app, runs))
        else:
            if args.pipeline not in specs:
                return _fail(f"no pipeline {args.pipeline[:40]!r} (pipelines: {', '.join(sorted(specs))})")
            spec = specs[args.pipeline]
            runs = store.list_runs(args.pipeline, limit=WINDOW)
            records = store.promotions(args.pipeline, None, limit=WINDOW)
            places = [e.name for e in spec.environments] or [spec.endpoint]
            targets = [args.target] if args.target else [p for p in places if _serves(records, p)]
            origins = [back(args.pipeline, t, runs, records, _data(app, runs)) for t in targets]
    except ValueError as exc:
        return _fail(str(exc))
    print(json.dumps(_as_json(origins, single=bool(args.target)), indent=2) if args.json else _text(origins, args))
    return 0


def _serves(records: Sequence[PromotionRecord], environment: str) -> bool:
    return any(r.environment == environment for r in records)


def _data(app: bootstrap.App, runs: Sequence[PipelineRun]) -> dict[str, str]:
    from relaunch.bootstrap import run_files

    found = {r.id: run_files.data_version(app.artifact_root, r.id) for r in runs if r.model_version}
    return {run_id: version for run_id, version in found.items() if version}


def _text(origins: Sequence[Origin], args: argparse.Namespace) -> str:
    if not origins:
        return f"nothing of {args.commit or args.pipeline} was run or served here"
    return "\n\n".join(_block(o) for o in origins)


def _block(o: Origin) -> str:
    where = f"served in {', '.join(o.served_in)}" if o.served_in else "not served now"
    head = f"{o.pipeline} {o.version}  {where}" if o.version else f"{o.pipeline} run {o.run_id}  no model ({o.state})"
    lines = [head, f"  run     {o.run_id}  ({o.trigger}, {o.state})"]
    if o.commit:
        lines.append(f"  commit  {o.commit}  ({o.ref or '-'} of {o.repo or '-'})")
    lines.append(f"  data    {o.data_version or 'not recorded'}")
    if o.artifact:
        lines.append(f"  W&B     {o.artifact}")
    return "\n".join(safe_line(line) for line in lines)


def _as_json(origins: Sequence[Origin], *, single: bool) -> object:
    found = [dataclasses.asdict(o) for o in origins]
    return found[0] if single and len(found) == 1 else found


def _fail(message: str) -> int:
    print(f"relaunch lineage: {safe_line(message)}", file=sys.stderr)
    return 1
