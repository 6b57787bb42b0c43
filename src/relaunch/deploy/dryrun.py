"""`relaunch deploy --dry-run`: the plan as a shell script, one command per line, `#` comments around them."""

from __future__ import annotations

from relaunch.deploy.command import render, render_arg
from relaunch.deploy.plan import Plan
from relaunch.deploy.step import Step


def render_plan(plan: Plan, source: str) -> str:
    """The commands a deploy on an empty project runs, in order, each after the check that guards it."""
    lines = [
        f"# relaunch deploy plan: project {plan.project}, region {plan.region}, from {source}",
        "# `relaunch deploy` runs each step only when its check (the describe in the comment above it) finds the",
        "# resource missing or different. Values that exist only at deploy time are shell substitutions; secret",
        "# values are read from Secret Manager when needed, never printed.",
        *(f"# warning: {w}" for w in plan.warnings),
    ]
    section = None
    for step in plan.steps:
        if step.section != section:
            section = step.section
            lines += ["", f"# == {section} =="]
        lines += _step_lines(step)
    return "\n".join(lines) + "\n"


def _step_lines(step: Step) -> list[str]:
    check = f"# {step.id}: check: {render(step.describe)}"
    if step.expect is not None:
        check += f" (expect: {render_arg(step.expect)})"
    lines = [check, *(f"# {note}" for note in step.notes)]
    if step.create is None and step.update is None and step.expect == "":
        return [*lines, "# (a check that finds nothing: the deploy stops here otherwise)"]
    if step.create is None and step.update is None:
        return [*lines, "# (must already exist: the deploy stops here otherwise)"]
    if step.create is None:  # it exists by now (made by an earlier step): bring it to the declared state
        return [*lines, render(step.update)] if step.update else lines
    lines.append(render(step.create))
    if step.update is not None and step.update != step.create:
        lines.append(f"#   if it exists but differs: {render(step.update)}")
    return lines
