"""Whether a gated run may replace the champion, judged by where its commit stands in history. Pure.

The gate compares metrics, and a retrain of an old commit can pass it (inside the regression margin): then a replayed
push would make the champion older by accident. So the candidate's commit is placed against the champion's:
ahead or identical (a drift or schedule retrain of the champion's own commit) goes on; behind (an ancestor of the
champion's commit) is refused unless the run was asked for on purpose (`force`); diverged (the branch was
force-pushed, or the champion's commit is gone from the repository) follows the spec's `gate.on_force_push`; and
unknown (history could not be read, or the repositories differ) is refused, since nothing shows it is not older.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Relation = Literal["ahead", "behind", "identical", "diverged", "unknown"]
RELATIONS: frozenset[str] = frozenset(get_args(Relation))
FORCE_HINT = "re-run it with force (`relaunch replay --force`, or a dispatch's `force` input) to promote it anyway"


@dataclass(frozen=True)
class AgeVerdict:
    """Allowed or not, why (the rejection reason), and what the timeline should say when it goes on anyway."""

    allowed: bool
    reason: str = ""
    note: str = ""


def as_relation(answer: object) -> Relation:
    """An adapter's answer as a Relation; anything else is "unknown" (and so refused)."""
    if isinstance(answer, str) and answer in RELATIONS:
        return answer  # type: ignore[return-value]  # narrowed by the membership test
    return "unknown"


def judge(
    candidate: str, champion: str, relation: Relation, *, force: bool, on_force_push: str, detail: str = ""
) -> AgeVerdict:
    """May a run of commit `candidate` replace a champion built from `champion`, given how the two relate?"""
    new, old = candidate[:7], champion[:7]
    if relation in ("ahead", "identical"):
        return AgeVerdict(True)
    if relation == "behind":
        why = f"commit {new} is older than the champion's {old} (an ancestor of it)"
        if force:
            return AgeVerdict(True, note=f"promoting an older commit on purpose (force): {why}")
        return AgeVerdict(False, reason=f"{why}; a retrain of an old commit needs force: {FORCE_HINT}")
    if relation == "diverged":
        why = f"commit {new} is not on the champion's {old} line of history (a force-pushed branch, or {old} is gone)"
        if on_force_push == "allow":
            return AgeVerdict(True, note=f"{why}; promoted as gate.on_force_push: allow says")
        if force:
            return AgeVerdict(True, note=f"promoting a force-pushed commit on purpose (force): {why}")
        return AgeVerdict(False, reason=f"{why}; set gate.on_force_push: allow, or {FORCE_HINT}")
    why = f"cannot tell whether commit {new} is older than the champion's {old}" + (f" ({detail})" if detail else "")
    if force:
        return AgeVerdict(True, note=f"promoting on purpose (force) although {why}")
    return AgeVerdict(False, reason=f"{why}; {FORCE_HINT}")
