"""Value types of the domain: runs, triggers, timeline entries, jobs, model versions, notifications."""

from __future__ import annotations

import enum
import time
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class RunState(str, enum.Enum):  # noqa: UP042 (StrEnum would change str(state), which logs and stored text read)
    """Where a pipeline run stands."""

    RECEIVED = "received"
    AWAITING_APPROVAL = "awaiting_approval"  # before building (a fork's PR) or rolling out (gate.approval): `awaiting`
    BUILDING = "building"
    TRAINING = "training"
    EVALUATING = "evaluating"
    GATED = "gated"
    ROLLING_OUT = "rolling_out"
    PROMOTED = "promoted"
    REJECTED = "rejected"
    EVALUATED = "evaluated"  # an evaluation-only run (a pull request) was gated: its verdict is the outcome
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"
    SUPERSEDED = "superseded"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {
        RunState.PROMOTED,
        RunState.REJECTED,
        RunState.EVALUATED,
        RunState.ROLLED_BACK,
        RunState.FAILED,
        RunState.SUPERSEDED,
    }
)

TriggerKind = Literal["push", "pull_request", "manual", "drift", "schedule", "wandb"]


class Source(StrEnum):
    """Where an inbound delivery came from (`Delivery.source`, stored in the inbox as the plain string)."""

    GITHUB = "github"
    WANDB = "wandb"
    DRIFT = "drift"
    SCHEDULE = "schedule"
    RETRAIN = "retrain"
    CLOUDBUILD = "cloudbuild"
    VERTEX = "vertex"


class FunctionName(StrEnum):
    """The deployed functions: entry points, local routes, subscriptions and inbox keys all spell them so."""

    GITHUB_WEBHOOK = "github_webhook"
    WANDB_WEBHOOK = "wandb_webhook"
    ORCHESTRATOR = "orchestrator"
    DRIFT_ALERT = "drift_alert"
    SCHEDULE_TICK = "schedule_tick"
    BUILD_STATUS = "build_status"
    VERTEX_JOB = "vertex_job"
    RECONCILE = "reconcile"


class Trigger(BaseModel):
    """What started a run, as far as the domain cares."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    kind: TriggerKind
    delivery_key: str = Field(description="Idempotency key of the inbound delivery")
    repo: str | None = Field(default=None, description="owner/name on GitHub")
    ref: str | None = None
    sha: str | None = None
    clone_url: str | None = None
    actor: str | None = None
    reason: str = ""
    priority: int = 0
    evaluate_only: bool = False
    artifact: str | None = Field(
        default=None,
        description="W&B artifact version a run evaluates instead of training: entity/project/name:vN, or :alias "
        "until the fetch resolves it once and records the concrete version here",
    )
    artifact_ref: str | None = Field(
        default=None,
        description="W&B's id reference of the event's version (wandb-artifact://_id/ID): the fetch must return it",
    )
    pr_number: int | None = Field(default=None, description="The pull request a pull_request run evaluates")
    base_sha: str | None = Field(
        default=None, description="A pull request's base commit: its evaluator runs there, never at the PR's head"
    )
    head_repo: str | None = Field(
        default=None, description="owner/name the pull request's head lives in (differs from `repo` for a fork)"
    )
    force: bool = Field(
        default=False,
        description="Asked for on purpose (`relaunch replay --force`, a dispatch's `force` input): runs even when a "
        "run of the same content exists, and may promote a commit older than the champion's (the timeline says so)",
    )

    @property
    def from_fork(self) -> bool:
        """Whether this is a pull request whose head lives in another repository (or one that was deleted)."""
        return self.kind == "pull_request" and (self.head_repo or "").lower() != (self.repo or "").lower()


class Scores(BaseModel):
    """One model's metrics on the held-out set, plus its per-example outcomes (1 correct, 0 wrong)."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    metrics: dict[str, float]
    outcomes: list[int] | None = None


class Check(BaseModel):
    """One line of a gate decision: what was checked, whether it passed, and why."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    name: str
    passed: bool
    detail: str
    interval: tuple[float, float] | None = Field(default=None, description="The paired test's accuracy-delta CI")


class Decision(BaseModel):
    """The eval gate's verdict with every reason behind it."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    promote: bool
    checks: list[Check]
    candidate: dict[str, float]
    champion: dict[str, float] | None = None
    champion_version: str | None = None

    @property
    def reasons(self) -> list[str]:
        return [c.detail for c in self.checks if not c.passed] or [c.detail for c in self.checks]


class PipelineRun(BaseModel):
    """A durable pipeline run: one trigger's way from event to promoted model (or a clear reason why not)."""

    model_config = ConfigDict(defer_build=True)  # its validator is built on first use (cold start)

    id: str
    pipeline: str
    trigger: Trigger
    state: RunState = RunState.RECEIVED
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    version: int = Field(default=0, description="Optimistic-concurrency counter, managed by the store")
    image: str | None = None
    build_id: str | None = None
    jobs: dict[str, str] = Field(default_factory=dict, description="step -> job id")
    model_uri: str | None = None
    champion_version: str | None = Field(default=None, description="Champion the candidate was evaluated against")
    decision: Decision | None = None
    model_version: str | None = None
    reason: str = ""
    stage_durations: dict[str, float] = Field(default_factory=dict, description="seconds spent per job step")
    attempt: int = Field(default=1, ge=1, description="Training attempt (retries of infrastructure failures add one)")
    eval_attempt: int = Field(default=1, ge=1, description="Evaluation attempt (as `attempt`, for the evaluate step)")
    retry_at: float | None = Field(default=None, description="When the current training retry may start")
    waiting_for: str | None = Field(default=None, description="Run of the same lane a received run waits for")
    hold_until: float | None = Field(default=None, description="A debounced received run builds after this time")
    awaiting: str | None = Field(  # what an approval lets go on: build, promotion, or environment:NAME (entering it)
        default=None, pattern=r"^(build|promotion|environment:[a-z][a-z0-9-]{0,30})$", description="What waits"
    )
    approval_deadline: float | None = Field(default=None, description="When a wait for approval expires (None: never)")
    rollout: RolloutProgress | None = Field(default=None, description="Where the run's rollout stands, once it began")
    evaluator_sha: str | None = Field(default=None, description="The commit whose evaluator scores the candidate")
    evaluator_image: str | None = Field(default=None, description="The evaluator's image (or checkout) once built")
    evaluator_build_id: str | None = Field(default=None, description="The build of a separate evaluator, if any")
    content_key: str | None = Field(
        default=None, description="What the run would do (pipeline, trigger kind, commit): the store keeps one run each"
    )
    model_digest: str | None = Field(
        default=None, description="Digest of the candidate's model files, once the gate passed (None: unknown)"
    )


class TimelineEntry(BaseModel):
    """One line of a run's history: a transition, a notification, a note."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    at: float = Field(default_factory=time.time)
    kind: str
    message: str
    data: dict[str, Any] = Field(default_factory=dict)


class Delivery(BaseModel):
    """An inbound delivery as kept in the inbox (secrets already removed from headers)."""

    model_config = ConfigDict(defer_build=True)  # its validator is built on first use (cold start)

    key: str
    source: str  # a Source; kept a plain str so a row of an older source still reads back
    received_at: float = Field(default_factory=time.time)
    headers: dict[str, str] = Field(default_factory=dict)
    body: str = ""
    outcome: str = "accepted"
    run_ids: list[str] = Field(default_factory=list)
    body_dropped_at: float | None = Field(default=None, description="When retention dropped the body (kept row)")


class DeadLetter(BaseModel):
    """A message that was acknowledged but can never be processed, kept with the reason for inspection."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    id: str
    at: float
    source: str
    reason: str
    payload: str


class MachineSpec(BaseModel):
    """Compute asked for by a job (used by cloud backends and the cost ledger)."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    machine_type: str = Field(default="n1-standard-4", description="Vertex machine type")
    accelerator_type: str | None = Field(default=None, description="e.g. NVIDIA_TESLA_T4")
    accelerator_count: int = Field(default=0, ge=0)
    replica_count: int = Field(default=1, ge=1)
    spot: bool = False


JobStep = Literal["train", "evaluate"]
JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobRequest(BaseModel):
    """A job for a TrainingBackend. `key` makes submission idempotent: the same key never runs twice."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    key: str
    run_id: str
    step: JobStep
    image: str = Field(description="Container image (cloud) or source directory (local agent)")
    command: list[str]
    env: dict[str, str] = Field(default_factory=dict)
    priority: int = 0
    max_retries: int = 0
    machine: MachineSpec = Field(default_factory=MachineSpec)
    timeout_s: float = 3600.0
    not_before: float | None = Field(default=None, description="Do not start before this time (a retry's backoff)")
    output_dir: str | None = Field(
        default=None,
        description="The job's output base (Vertex's baseOutputDirectory); the backend derives AIP_MODEL_DIR etc.",
    )


class JobStatus(BaseModel):
    """What a backend knows of a job."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    id: str
    state: JobState
    attempts: int = 1
    message: str = ""
    log_tail: str = ""
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def done(self) -> bool:
        return self.state in ("succeeded", "failed", "cancelled")


class BuildResult(BaseModel):
    """Outcome of asking an ImageBuilder for the run's image; `image` is None while a build is pending."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    build_id: str
    image: str | None = None
    sha: str | None = Field(default=None, description="The commit built (resolved from the ref when the run had none)")
    environment: str | None = Field(default=None, description="The hash of the Python environment its jobs run with")
    environment_note: str = Field(default="", description="How the build came by that environment, for the timeline")


class ModelVersion(BaseModel):
    """A registered model version."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    pipeline: str
    version: str
    artifact_uri: str
    run_id: str
    metrics: dict[str, float] = Field(default_factory=dict)
    created_at: float = Field(default_factory=time.time)
    resource_name: str | None = Field(
        default=None, description="The backend's own name for it, e.g. projects/P/locations/L/models/M@3 on Vertex"
    )
    metadata: dict[str, str] = Field(
        default_factory=dict,
        description="Where it came from (trigger, commit, run, time, content digest): see domain/provenance.py",
    )


Stage = Literal["build", "train", "evaluate", "gate", "approval", "deploy"]
StatusState = Literal["pending", "success", "failure", "error"]


class Notification(BaseModel):
    """What a stage reports to the outside (GitHub status/check, Slack)."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    run_id: str
    pipeline: str
    repo: str | None
    sha: str | None
    stage: Stage
    state: StatusState
    description: str
    report_markdown: str | None = None
    trigger_kind: str = "push"
    ref: str | None = None
    evaluate_only: bool = False
    endpoint: str | None = None
    model_version: str | None = Field(default=None, description="The version being rolled out (deploy stage)")
    reasons: list[str] = Field(default_factory=list, description="The gate's reasons, for summaries (Slack)")
    target_url: str | None = Field(default=None, description="Where to see the run, when relaunch has a public URL")
    conclusion: Literal["neutral"] | None = Field(
        default=None, description="A check run conclusion the state does not say: neutral while a run awaits approval"
    )
    pr_number: int | None = Field(default=None, description="The pull request a pull_request run evaluates")
    decision: Decision | None = Field(default=None, description="The gate's decision, on its verdict (PR report)")
    run_created_at: float | None = Field(default=None, description="When the run began: orders PR reports")


class EndpointHealth(BaseModel):
    """What an endpoint observed for one deployed version over a window: traffic, errors and latency."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    version: str = ""
    requests: int = Field(default=0, ge=0)
    errors: int = Field(default=0, ge=0, description="Server errors (5xx) and model exceptions")
    error_rate: float = Field(default=0.0, ge=0, le=1)
    p50_ms: float | None = Field(default=None, description="None when no request was timed in the window")
    p95_ms: float | None = None
    window_s: float = Field(default=0.0, ge=0, description="Seconds the figures cover")


RolloutPhase = Literal[
    "pending",  # nothing done yet
    "deployed",  # the new version is deployed at 0%
    "baking",  # canary: the new version takes its share, health is watched
    "smoke_passed",  # blue-green: the smoke test answered
    "smoke_failed",
    "holding",  # blue-green: all traffic switched, the previous version kept through the rollback window
    "promoted",  # all traffic on the new version, the previous one still deployed
    "done",  # promoted and the previous version undeployed
    "rolled_back",  # traffic back on the previous version, the new one undeployed
    "failed",  # rolled back with nothing to roll back to: the new version undeployed, nothing serves
]


class RolloutProgress(BaseModel):
    """Where a run's rollout stands; kept on the run so a re-run step (after a crash) plans the same action."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    phase: RolloutPhase = "pending"
    started_at: float
    phase_started_at: float
    previous_version: str | None = Field(description="The version serving before the rollout (None: first model)")
    new_version: str
    traffic: dict[str, int] = Field(default_factory=dict, description="The split the last action set")
    smoke_detail: str = ""
    reason: str = Field(default="", description="Why the rollout rolled back or failed")
