"""The W&B lines of `relaunch runs show` and the dashboard's run page: the artifact a W&B event named, and the runs
the jobs logged offline (part of the composition root: it reads the run's folder through run_files)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from relaunch.bootstrap import run_files
from relaunch.domain.model import PipelineRun


def wandb_facts(artifact_root: str, run: PipelineRun, synced: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
    """`runs show` rows: the W&B artifact a W&B event named, and the runs the jobs logged offline (with the folder
    `wandb sync` uploads); `synced`: the ledger's record of relaunch's upload of them (Effect.WANDB_SYNC), if any."""
    rows = [("W&B artifact", run.trigger.artifact)] if run.trigger.artifact else []
    try:
        logged = run_files.wandb_runs(artifact_root, run.id)
    except (OSError, ValueError) as exc:
        return [*rows, ("W&B", f"{exc}")]
    if synced is not None:
        rows.append(("W&B", f"synced by relaunch: model {synced.get('artifact') or 'none logged'}"))
        urls = synced.get("run_urls")
        rows += [(f"W&B {job} run", str(url)) for job, url in (urls.items() if isinstance(urls, dict) else [])]
    elif logged:
        rows.append(("W&B", f"offline, not synced: {run_files.wandb_folder(artifact_root, run.id)}"))
    for r in logged:
        prefix = f"{r.entity}/{r.project}/" if r.entity else f"{r.project}/"
        made = [f"logged {prefix}{a.name}:{_alias(a.aliases)} (digest {a.digest[:12]})" for a in r.artifacts]
        used = r.config.get("model_artifact")
        if isinstance(used, dict):
            made.append(f"used {used.get('name')}:{used.get('alias')} (digest {str(used.get('digest'))[:12]})")
        rows.append((f"W&B {r.job_type or 'run'}", f"run {r.run_id}" + "".join(f"; {m}" for m in made)))
    return rows


def _alias(aliases: Sequence[str]) -> str:
    return next((a for a in aliases if a.startswith("relaunch-")), "latest")
