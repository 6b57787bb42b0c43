"""`relaunch history PIPELINE [--env ENV]` and `relaunch status PIPELINE`: what each environment served, and serves.

Both read the promotion history the store keeps (one record per promotion into an environment, and per rollback in
one). A pipeline without `environments:` has one implicit environment named after its endpoint, recorded the same way;
a model it promoted before records were kept is read from its newest promoted run.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from relaunch.cli.views import no_store_yet
from relaunch.settings import Settings
from relaunch.textsafe import safe_line

if TYPE_CHECKING:
    from relaunch.domain.environments import PromotionRecord
    from relaunch.domain.model import PipelineRun
    from relaunch.domain.ports import PromotionHistory

ORIGIN_WINDOW = 200  # records searched back for the promotion of a version a rollback put back


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `history` and `status`."""
    history = sub.add_parser("history", help="list a pipeline's promotions into its environments, newest first")
    history.add_argument("pipeline", help="the pipeline, as its spec names it")
    history.add_argument("--env", help="only this environment's history (e.g. staging)")
    history.add_argument("--limit", type=_positive, default=50, help="at most this many records (default 50)")
    history.set_defaults(func=cmd_history)
    status = sub.add_parser("status", help="what each environment of a pipeline serves, since when, from which run")
    status.add_argument("pipeline", help="the pipeline, as its spec names it")
    status.set_defaults(func=cmd_status)


def cmd_history(args: argparse.Namespace) -> int:
    """Print the pipeline's promotion records; exit 1 for an unknown pipeline or environment."""
    from relaunch.cli import render
    from relaunch.cli.terminal import show

    found = _open(args.pipeline, args.env)
    if found is None:
        return 1
    history, _, _ = found
    show(render.history_table(history.promotions(args.pipeline, args.env, limit=args.limit)))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Print, per environment, the version it serves, since when, from which commit and run."""
    from relaunch.cli import render
    from relaunch.cli.terminal import show

    found = _open(args.pipeline, None)
    if found is None:
        return 1
    history, places, runs = found
    latest = [_serving(history, args.pipeline, name) for name, _ in places]
    if len(places) == 1 and latest[0] is None and runs is not None:  # the implicit one, promoted before records
        latest = [_from_runs(runs, args.pipeline, places[0][0])]
    show(render.status_table(places, latest))
    return 0


def _open(pipeline: str, env: str | None) -> tuple[PromotionHistory, list[tuple[str, str]], RunReader | None] | None:
    """The store's history, the pipeline's (environment, endpoint) pairs and its runs; None (said on stderr) if none."""
    from relaunch import bootstrap
    from relaunch.domain.ports import PromotionHistory

    settings = Settings()
    if no_store_yet(settings):
        print(f"relaunch: no history: {settings.store_path} does not exist", file=sys.stderr)
        return None
    app = bootstrap.App(settings)
    specs = app.specs()
    spec = specs.get(pipeline)
    if spec is None:
        print(f"relaunch: no pipeline {safe_line(pipeline)!r} (pipelines: {', '.join(sorted(specs))})", file=sys.stderr)
        return None
    places = [(e.name, e.endpoint) for e in spec.environments] or [(spec.endpoint, spec.endpoint)]  # implicit: one
    if env is not None and env not in (names := [name for name, _ in places]):
        known = ", ".join(names) + ("" if spec.environments else ": no environments, its endpoint is the one")
        print(f"relaunch: {pipeline} has no environment {safe_line(env)!r} (environments: {known})", file=sys.stderr)
        return None
    store = app.store
    if not isinstance(store, PromotionHistory):
        print(f"relaunch: the {settings.adapter('store')} store keeps no environment history", file=sys.stderr)
        return None
    return store, places, store if isinstance(store, RunReader) else None


@runtime_checkable
class RunReader(Protocol):
    """What `status` reads of the runs: a pipeline's newest ones."""

    def list_runs(self, pipeline: str | None = None, limit: int = 50) -> list[PipelineRun]: ...


def _serving(history: PromotionHistory, pipeline: str, env: str) -> PromotionRecord | None:
    """The environment's newest record; after a rollback, with the run and commit that made the version put back
    (a rollback's own record names the run it undid)."""
    latest = next(iter(history.promotions(pipeline, env, limit=1)), None)
    if latest is None or latest.kind == "promoted":
        return latest
    back = history.promotions(pipeline, env, limit=ORIGIN_WINDOW)
    origin = next((r for r in back if r.kind == "promoted" and r.version == latest.version), None)
    return latest if origin is None else latest.model_copy(update={"run_id": origin.run_id, "sha": origin.sha})


def _from_runs(runs: RunReader, pipeline: str, endpoint: str) -> PromotionRecord | None:
    """What the newest promoted run put on the endpoint, for a model promoted before promotion records were kept."""
    from relaunch.domain.environments import PromotionRecord
    from relaunch.domain.model import RunState

    promoted = next((r for r in runs.list_runs(pipeline, limit=200) if r.state is RunState.PROMOTED), None)
    if promoted is None or promoted.model_version is None:
        return None
    return PromotionRecord(
        pipeline=pipeline,
        environment=endpoint,
        version=promoted.model_version,
        run_id=promoted.id,
        sha=promoted.trigger.sha,
        at=promoted.updated_at,
    )


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number
