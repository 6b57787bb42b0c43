"""`relaunch launch-queue apply`: create the W&B Launch queue relaunch pushes jobs to, or bring its config up to date.

The queue's config is a file (`deploy/launch/queue-config.yaml`) whose `${RELAUNCH_...}` placeholders are filled
from relaunch's settings, so the queue and the jobs relaunch pushes agree on the staging bucket and service account.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from relaunch.settings import Settings, reveal
from relaunch.textsafe import safe_line

DEFAULT_FILE = Path("deploy/launch/queue-config.yaml")
_PLACEHOLDER = re.compile(r"\$\{(RELAUNCH_[A-Z0-9_]+)\}")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `launch-queue apply`."""
    queue = sub.add_parser("launch-queue", help="manage the W&B Launch queue relaunch pushes training jobs to")
    actions = queue.add_subparsers(metavar="ACTION", help="what to do with the queue")
    apply = actions.add_parser("apply", help="create the queue or update its config (a second apply changes nothing)")
    apply.add_argument("--file", type=Path, default=DEFAULT_FILE, help="the queue config (default: %(default)s)")
    apply.set_defaults(func=cmd_apply)


def placeholders(s: Settings) -> dict[str, str | None]:
    """What each `${RELAUNCH_...}` of a queue config stands for."""
    return {
        "RELAUNCH_WANDB_STAGING_BUCKET": s.wandb_staging_bucket,
        "RELAUNCH_VERTEX_SERVICE_ACCOUNT": s.vertex_service_account,
        "RELAUNCH_GCP_PROJECT": s.gcp_project,
        "RELAUNCH_GCP_REGION": s.gcp_region,
    }


def read_config(path: Path, values: Mapping[str, str | None]) -> dict[str, Any]:
    """The queue config in `path` with its placeholders filled; ValueError naming the file and what is wrong."""
    import yaml

    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the queue config ({exc.strerror})") from None

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise ValueError(f"{path}: unknown placeholder ${{{name}}} (known: {', '.join(sorted(values))})")
        filled = values[name]
        if not filled:
            hint = " or a gs:// RELAUNCH_ARTIFACT_ROOT" if name == "RELAUNCH_WANDB_STAGING_BUCKET" else ""
            setting = "RELAUNCH_WANDB_LAUNCH_STAGING_BUCKET" if name == "RELAUNCH_WANDB_STAGING_BUCKET" else name
            raise ValueError(f"{path}: ${{{name}}} needs {setting}{hint} to be set")
        return filled

    try:
        config = yaml.safe_load(_PLACEHOLDER.sub(value, text))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: the queue config must be a mapping with `spec` and `run`")
    return config


def check_vertex_config(config: Any) -> None:
    """Refuse what W&B's Vertex runner would refuse at run time (wandb/sdk/launch/runner/vertex_runner.py)."""
    if not isinstance(config, dict) or not isinstance(config.get("spec"), dict):
        raise ValueError("queue config: `spec` must be a mapping (the CustomJob's spec)")
    spec = config["spec"]
    pools = spec.get("worker_pool_specs")
    if not isinstance(pools, list) or not pools:
        raise ValueError("queue config: spec.worker_pool_specs must list at least one worker pool")
    for n, pool in enumerate(pools):
        if not isinstance(pool, dict) or not isinstance(pool.get("container_spec"), dict):
            raise ValueError(f"queue config: spec.worker_pool_specs[{n}].container_spec must be a mapping")
    bucket = spec.get("staging_bucket")
    if not isinstance(bucket, str) or not bucket.startswith("gs://") or len(bucket) <= len("gs://"):
        raise ValueError(f"queue config: spec.staging_bucket must be a gs:// URI, got {bucket!r}")
    if not isinstance(config.get("run", {}), dict):
        raise ValueError("queue config: `run` must be a mapping (the CustomJob's run arguments)")


def cmd_apply(args: argparse.Namespace) -> int:
    """Create or update the queue; prints what changed. Exit 2 for bad settings or config, 1 if W&B refused."""
    from relaunch.bootstrap import App
    from relaunch.domain.ports import TransientError

    s = Settings()
    missing = [f"RELAUNCH_{n.upper()}" for n in ("wandb_entity", "wandb_launch_queue") if not getattr(s, n)]
    missing += [] if reveal(s.wandb_api_key) else ["RELAUNCH_WANDB_API_KEY"]
    if missing:
        print(f"relaunch: launch-queue apply: set {', '.join(missing)}", file=sys.stderr)
        return 2
    entity, name = s.wandb_entity or "", s.wandb_launch_queue or ""
    try:
        config = read_config(args.file, placeholders(s))
        check_vertex_config(config)
    except ValueError as exc:
        print(f"relaunch: launch-queue apply: {safe_line(str(exc))}", file=sys.stderr)
        return 2
    try:
        outcome = App(s).apply_launch_queue(config)
    except (ValueError, TransientError) as exc:
        print(f"relaunch: launch-queue apply: {safe_line(str(exc))}", file=sys.stderr)
        return 1
    if outcome == "unchanged":
        print(f"W&B Launch queue {entity}/{name} is up to date: nothing changed")
    else:
        print(f"{outcome} W&B Launch queue {entity}/{name} (gcp-vertex, prioritization on) from {args.file}")
    return 0
