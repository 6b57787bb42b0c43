"""`relaunch deploy`: the infrastructure a triggers file declares, planned (pure) and applied idempotently.

infra.py (the file's models) -> crosscheck.py (its references) -> plan.py (ordered steps) -> dryrun.py (printed)
or runner.py (applied through a Shell).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from relaunch.config_files import load_specs
from relaunch.deploy.dryrun import render_plan
from relaunch.deploy.infra_file import InfraError, load_infra
from relaunch.deploy.plan import Plan, build_plan
from relaunch.deploy.runner import DeployError, Shell, SubprocessShell, run_plan

__all__ = ["InfraError", "Plan", "build_plan", "deploy", "load_infra", "plan_for", "render_plan", "run_plan"]


def plan_for(file: Path, pipelines_dir: Path) -> Plan:
    """Load the triggers file (checked against the pipelines) and plan it."""
    if not pipelines_dir.is_dir():
        raise InfraError(f"{file}: the pipelines folder {pipelines_dir} does not exist (--pipelines-dir)")
    specs = load_specs(pipelines_dir)
    return build_plan(load_infra(file, specs), specs)


def deploy(
    file: Path,
    *,
    dry_run: bool,
    pipelines_dir: Path,
    shell: Shell | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Print the plan (dry run) or apply it; 0 when done, 1 when a step failed, 2 when the file is invalid."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    try:
        plan = plan_for(file, pipelines_dir)
    except InfraError as exc:
        print(f"relaunch deploy: invalid triggers file: {exc}", file=err)
        return 2
    if dry_run:
        out.write(render_plan(plan, str(file)))
        return 0
    for warning in plan.warnings:
        print(f"relaunch deploy: warning: {warning}", file=err)
    try:
        report = run_plan(plan, shell or SubprocessShell(), echo=lambda line: print(line, file=out, flush=True))
    except DeployError as exc:
        print(f"relaunch deploy: stopped at {exc}", file=err)
        return 1
    counts = ", ".join(f"{report.count(a)} {a}" for a in ("created", "updated", "unchanged"))
    print(f"relaunch deploy: {len(report.actions)} steps done: {counts}", file=out)
    return 0
