"""What a registered model version records about where it came from. Pure.

A scheduled or drift retrain of an unchanged commit is still registered: the data it trained on may have changed even
though the code did not. Its metadata says what is new (the trigger, the time, the content of the model) and names
the champion it repeats the commit of, so v4, v5 and v7 of one commit are told apart. A model whose files are
identical to the champion's is not registered at all (see service/gate_step.py). It also names the Python environment
its build made (`python_environment`): the local endpoint serves the version with the scikit-learn it was trained by.
"""

from __future__ import annotations

import time

from relaunch.domain.dependencies import is_environment_hash
from relaunch.domain.model import ModelVersion, PipelineRun, TimelineEntry

REASON_LIMIT = 200  # the trigger's reason is free text from an alert or a dispatch: kept short


def version_metadata(
    run: PipelineRun, champion: ModelVersion | None, *, at: float, python_environment: str | None = None
) -> dict[str, str]:
    """The metadata a registry keeps on the run's version (`champion`: the version it was evaluated against;
    `python_environment`: the hash of the environment its jobs ran with, see `built_environment`)."""
    t = run.trigger
    meta = {"run_id": run.id, "trigger": t.kind, "registered_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))}
    optional = {
        "commit": t.sha,
        "ref": t.ref,
        "artifact": t.artifact,
        "reason": t.reason[:REASON_LIMIT] if t.reason else None,
        "content_digest": run.model_digest,
        "same_commit_as": same_commit_as(run, champion),
        "python_environment": python_environment,
    }
    meta.update({k: v for k, v in optional.items() if v})
    return meta


def same_commit_as(run: PipelineRun, champion: ModelVersion | None) -> str | None:
    """The champion's version when the run trained the very commit the champion came from, else None."""
    if champion is None or not run.trigger.sha:
        return None
    return champion.version if champion.metadata.get("commit") == run.trigger.sha else None


def built_environment(timeline: list[TimelineEntry]) -> str | None:
    """The environment hash the run's latest build recorded on its timeline (None: none declared, or no build).

    Only the build's info entry counts: a deployment entry's `environment` is a deployment environment's name."""
    for entry in reversed(timeline):
        if entry.kind == "info" and "environment" in entry.data:
            found = entry.data["environment"]
            return found if isinstance(found, str) and is_environment_hash(found) else None
    return None
