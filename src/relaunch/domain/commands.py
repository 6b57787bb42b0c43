"""Commands carried on the `relaunch-commands` topic (the orchestrator's only input), and the inbound topics."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from relaunch.domain.model import FunctionName, JobState, JobStep

COMMANDS_TOPIC = "relaunch-commands"
# Topics the Pub/Sub functions listen on (the embedded stack subscribes them; on GCP, the deploy does).
DRIFT_TOPIC = "relaunch-drift"
SCHEDULE_TOPIC = "relaunch-schedule"
BUILDS_TOPIC = "cloud-builds"  # Cloud Build publishes every build's status here
RECONCILE_TOPIC = "relaunch-reconcile"  # a scheduler tick (on GCP Cloud Scheduler, locally the stack's timer)
VERTEX_JOBS_TOPIC = "relaunch-vertex-jobs"  # Vertex AI CustomJob service log entries, routed by a log sink
INBOUND_TOPICS = {
    FunctionName.DRIFT_ALERT: DRIFT_TOPIC,
    FunctionName.SCHEDULE_TICK: SCHEDULE_TOPIC,
    FunctionName.BUILD_STATUS: BUILDS_TOPIC,
    FunctionName.VERTEX_JOB: VERTEX_JOBS_TOPIC,
}


class _Command(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    run_id: str = Field(min_length=1)


class StartRun(_Command):
    """A new run was written; move it from `received`."""

    type: Literal["start_run"] = "start_run"


class JobFinished(_Command):
    """A training or evaluation job reached a final state."""

    type: Literal["job_finished"] = "job_finished"
    step: JobStep
    job_id: str
    state: JobState


class JobNoticed(_Command):
    """Vertex AI logged something about one of the run's jobs: read the job's state (the log entry says none)."""

    type: Literal["job_noticed"] = "job_noticed"
    job_id: str


class BuildFinished(_Command):
    """An image build reached a final state."""

    type: Literal["build_finished"] = "build_finished"
    build_id: str
    image: str | None = None
    succeeded: bool


class ReportSkip(_Command):
    """Tell GitHub a commit was skipped (no watched path changed); `run_id` is the run it would have started."""

    type: Literal["report_skip"] = "report_skip"
    pipeline: str
    repo: str
    sha: str
    ref: str | None = None
    description: str


class LabelApproval(_Command):
    """An approval label was added to a pull request: decide its waiting runs if `login` may write.

    `login` is who GitHub says added the label; their permission is asked of GitHub's API, never read from a
    payload. `run_id` is the run this delivery would have started (it starts none): the runs waiting are found by
    pull request and head commit.
    """

    type: Literal["label_approval"] = "label_approval"
    pipeline: str
    repo: str
    pr_number: int = Field(ge=1)
    sha: str
    login: str
    label: str
    verdict: Literal["approved", "rejected"] = "approved"
    for_build: bool = True  # the label decides a fork's wait to build at `sha`
    for_promotion: bool = False  # the label decides gated runs at `sha` or `merge_sha` waiting to roll out
    merge_sha: str | None = None  # the merged pull request's commit on its base branch


class CheckRunAction(_Command):
    """A button on relaunch's gate check run of run `run_id` was pressed: act on the run if `login` may write.

    `repo`, `sha` and `check_run_id` are the check run's, as the delivery says: the handler acts only when they are
    the run's own. `login`'s permission is asked of GitHub's API, never read from the payload.
    """

    type: Literal["check_run_action"] = "check_run_action"
    repo: str
    sha: str
    check_run_id: int = Field(ge=1)
    login: str
    action: Literal["promote", "reject", "rollback"]
    delivery: str = Field(min_length=1, max_length=300)  # the delivery's inbox key: a redelivery acts once


class LookAtRollout(_Command):
    """Plan the run's rollout again: its wait ends at `not_before` (a bake's or a window's end, a hold's max).

    The local bus delivers it at `not_before`. Pub/Sub cannot delay a message: it is published only once the time
    is at most LOOK_HOLD_S away, and the orchestrator function holds it until then (see `hold_s`).
    """

    type: Literal["look_at_rollout"] = "look_at_rollout"
    not_before: float = Field(allow_inf_nan=False)


# How long the orchestrator function may hold an early look: more than the GCP reconcile tick's minute (so some tick
# always publishes the look in time), far less than the function's 540 s timeout.
LOOK_HOLD_S = 90.0


def hold_s(command: object, now: float) -> float:
    """How long to hold `command` before handling it: an early look until its time, at most LOOK_HOLD_S. Pure."""
    if not isinstance(command, LookAtRollout):
        return 0.0
    return min(max(command.not_before - now, 0.0), LOOK_HOLD_S)


Command = Annotated[
    StartRun | JobFinished | JobNoticed | BuildFinished | ReportSkip | LabelApproval | CheckRunAction | LookAtRollout,
    Field(discriminator="type"),
]
COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command, config=ConfigDict(defer_build=True))


def parse_command(data: dict[str, object]) -> Command:
    """Validate a decoded message body as a Command (raises pydantic.ValidationError)."""
    return COMMAND_ADAPTER.validate_python(data)
