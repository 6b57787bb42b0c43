"""Pipeline specs: typed models of `pipelines/*.yaml`. A typo is an error naming the file and the field."""

from __future__ import annotations

import fnmatch
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from relaunch.domain.gitnames import clone_url_problem, name_problem, repo_problem
from relaunch.domain.model import MachineSpec
from relaunch.domain.rollout import DirectRollout, Rollout
from relaunch.domain.spec_approval import ApprovalRule
from relaunch.domain.spec_environments import WithEnvironments
from relaunch.domain.spec_sweep import SweepSpec
from relaunch.domain.spec_tracking import TrackingSpec


class _Strict(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)


WandbEventKind = Literal["new_version", "alias_added", "linked"]
Severity = Literal["info", "warning", "error", "critical"]
_GLOB = frozenset("*?[")


class WandbSource(_Strict):
    """Which W&B artifact events start an evaluation of an existing model."""

    entity: str = Field(min_length=1, description="W&B entity (team or user) of the artifact or registry")
    project: str = Field(min_length=1, description="W&B project (or registry project) of the collection")
    collection: str = Field(min_length=1, description="Artifact collection, or registry collection for links")
    aliases: list[str] = Field(default=["candidate"], description="Aliases whose addition starts a run")
    events: list[WandbEventKind] = Field(
        default=["new_version", "alias_added", "linked"], min_length=1, description="Which W&B events are acted on"
    )


class SourceSpec(_Strict):
    """Which pushes (and W&B artifact events) this pipeline watches."""

    repo: str = Field(description="GitHub owner/name, compared case-insensitively")
    branches: list[str] = Field(default=["main"], description="Branch name patterns (fnmatch), e.g. 'release/*'")
    tags: list[str] = Field(default=[], description="Tag patterns (fnmatch) that start a run; none by default")
    paths: list[str] = Field(default=["**"], description="Path patterns; a push touching none of them is skipped")
    clone_url: str | None = Field(
        default=None,
        description="Where to clone from (https://, ssh://, git@host:path; file:///path in the embedded profile "
        "only); default https://github.com/<repo>.git. A payload never chooses it",
    )
    wandb: WandbSource | None = Field(default=None, description="W&B artifact events that start an evaluation")

    @field_validator("repo")
    @classmethod
    def _owner_slash_name(cls, value: str) -> str:
        if problem := repo_problem(value):
            raise ValueError(problem)
        return value

    @field_validator("clone_url")
    @classmethod
    def _safe_clone_url(cls, value: str | None) -> str | None:
        if value is not None and (problem := clone_url_problem(value)):
            raise ValueError(problem)
        return value

    def watches_repo(self, full_name: str) -> bool:
        return self.repo.lower() == full_name.lower()

    def watches_branch(self, branch: str) -> bool:
        return any(fnmatch.fnmatchcase(branch, pattern) for pattern in self.branches)

    def watches_tag(self, tag: str) -> bool:
        return any(fnmatch.fnmatchcase(tag, pattern) for pattern in self.tags)

    def watches_path(self, path: str) -> bool:
        return any(_path_matches(path, pattern) for pattern in self.paths)

    def head_branch(self) -> str | None:
        """The branch a run without a commit (schedule, drift, W&B, dispatch) retrains: the first literal one."""
        return next((b for b in self.branches if not _GLOB.intersection(b)), None)

    def repo_clone_url(self) -> str:
        """Where every run of this pipeline clones from: the spec's clone_url, else GitHub's https URL of repo."""
        return self.clone_url or f"https://github.com/{self.repo}.git"


def _path_matches(path: str, pattern: str) -> bool:
    if pattern in ("**", "**/*"):
        return True
    if pattern.endswith("/**"):
        return path.startswith(pattern[:-2])
    return fnmatch.fnmatchcase(path, pattern)


class JobSpec(_Strict):
    """How to run one step of the training project."""

    command: list[str] = Field(min_length=1, description="argv, run in the checked-out source tree")
    machine: MachineSpec = Field(default_factory=MachineSpec)
    max_retries: int = Field(default=1, ge=0, le=10, description="Retries of infrastructure failures")
    timeout_s: float = Field(default=3600.0, gt=0)
    env: dict[str, str] = Field(default_factory=dict)


class EvaluateSpec(JobSpec):
    """The evaluation step, and which commit's evaluator runs it (never one the candidate can change)."""

    ref: str | None = Field(
        default=None,
        description="Branch or full ref whose head provides the evaluator of push, schedule, drift and W&B runs "
        "(default: the run's own commit); a pull request is always evaluated at its base commit",
    )

    @field_validator("ref")
    @classmethod
    def _well_formed_ref(cls, value: str | None) -> str | None:
        if value is not None and (problem := name_problem(value)):
            raise ValueError(f"must be a branch or a full ref name: it {problem}")
        return value


class GatePolicy(ApprovalRule, _Strict):
    """The eval gate: absolute floors, bounded regression against the champion, a paired test that can fail it."""

    floors: dict[str, float] = Field(default_factory=dict, description="metric -> minimum (higher is better)")
    ceilings: dict[str, float] = Field(default_factory=dict, description="metric -> maximum (lower is better)")
    max_regression: dict[str, float] = Field(
        default_factory=dict, description="metric -> largest allowed drop versus the champion (absolute)"
    )
    require_significant_improvement: bool = Field(
        default=False, description="Promote only if the paired test shows the candidate better"
    )
    significance: float = Field(default=0.05, gt=0, lt=1, description="Alpha of the paired (McNemar) test")
    non_inferiority_margin: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        allow_inf_nan=False,
        description="Largest accuracy drop (absolute, 0..1) the paired test tolerates: the gate fails a candidate "
        "whose drop is significantly larger at `significance` (exact one-sided McNemar test when 0, Tango's score "
        "test for paired proportions otherwise)",
    )
    on_force_push: Literal["refuse", "allow"] = Field(
        default="refuse",
        description="A candidate whose commit is not on the champion's line of history (the branch was force-pushed, "
        "or the champion's commit is gone): refuse it (a human decides, with force) or allow it",
    )


class DriftPolicy(_Strict):
    """When a drift alert retrains this pipeline."""

    enabled: bool = Field(default=True, description="Act on drift alerts at all")
    min_severity: Severity = Field(default="warning", description="Alerts below this severity are ignored")
    cooldown_s: float = Field(default=21600.0, ge=0, description="No new drift run within this long of the last")
    monitoring_jobs: list[str] = Field(
        default_factory=list,
        description="Vertex Model Monitoring jobs (ids or resource names) whose anomaly logs retrain this pipeline",
    )

    def watches_monitoring_job(self, job: str) -> bool:
        """Whether `job` (an id or a full resource name) is one of this pipeline's monitoring jobs."""
        job_id = job.rsplit("/", 1)[-1]
        return any(j == job or j.rsplit("/", 1)[-1] == job_id for j in self.monitoring_jobs)


class CoalescePolicy(_Strict):
    """How pushes to one branch share its training (at most one at a time; see domain/coalescing.py)."""

    debounce_s: float = Field(
        default=0.0, ge=0, le=3600, description="Hold a new push this long before building, so a burst builds once"
    )
    burst_quiet_s: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        description="With no debounce: a push that supersedes a build or training under way waits until its branch "
        "got no push for this long, so a burst trains at most twice (0: build every push at once)",
    )


class PullRequestPolicy(_Strict):
    """Which pull requests are built: a fork's code runs only once someone with write access approved its head."""

    forks: Literal["ignore", "on_approval"] = Field(
        default="ignore",
        description="ignore: a pull request from a fork starts no run; on_approval: its run waits in "
        "awaiting_approval until someone with write permission on the repository approves that head commit",
    )
    approval_label: str = Field(
        default="relaunch:approved",
        min_length=1,
        max_length=50,
        description="The label that approves a fork's pull request, when added by someone with write permission",
    )


class PipelineSpec(WithEnvironments, _Strict):
    """One pipeline: what it watches, how it trains and evaluates, how it is gated and rolled out."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$", description="Lower-case id, used in run ids and labels")
    source: SourceSpec
    train: JobSpec
    evaluate: EvaluateSpec
    gate: GatePolicy = Field(default_factory=GatePolicy)
    rollout: Rollout = Field(
        default_factory=DirectRollout, description="How a promoted model takes traffic: direct, canary or blue-green"
    )
    endpoint: str = Field(description="Name of the serving endpoint")
    priority: int = Field(default=0, ge=0, le=100, description="Higher runs first on the training queue")
    drift: DriftPolicy = Field(default_factory=DriftPolicy)
    coalesce: CoalescePolicy = Field(default_factory=CoalescePolicy)
    pull_requests: PullRequestPolicy = Field(
        default_factory=PullRequestPolicy, description="How pull requests, and those from forks, are treated"
    )
    sweep: SweepSpec | None = Field(default=None, description="A hyperparameter search instead of one training")
    tracking: TrackingSpec = Field(default_factory=TrackingSpec, description="W&B logging by the jobs (opt-in)")


class SpecError(ValueError):
    """A pipeline spec file is invalid; the message names the file and the field."""
