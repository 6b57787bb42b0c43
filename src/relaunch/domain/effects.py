"""Every key relaunch does something exactly once under: one registry, so a reader checks them all in one file.

The keys are stored (the store's effect ledger, the inbox, Cloud Build tags, Vertex labels) and compared on every
retry: changing one repeats the side effect it guards for every run already keyed under the old form. Each builder
is pinned to its literal output by tests/unit/test_effects.py.

Effects in the store's ledger, keyed (run id, step); first write wins:

| step                          | written by                     | guards                                        |
| ----------------------------- | ------------------------------ | --------------------------------------------- |
| `approval`                    | service/approval_step          | the one approval of a fork's run              |
| `override`                    | service/run_actions            | who overrode the gate's rejection of a run    |
| `rollback-asked`              | service/run_actions            | the one rollback of a run asked by a person   |
| `press:<delivery key>`        | service/check_run_step         | one handling of a check-run button delivery   |
| `cost`                        | service/ledger                 | the run's (or skipped push's) ledger entry    |
| `fetch`                       | service/artifact_pin           | the W&B artifact fetched and pinned once      |
| `alias:<alias>`               | service/artifact_pin           | the promote alias moved to the W&B version    |
| `wandb-sync`                  | service/tracking_step          | the jobs' offline W&B runs uploaded once      |
| `wandb-sync:failed`           | service/tracking_step          | the one note that their upload failed         |
| `notify:<stage>:<state>`      | service/orchestrator           | one status post per stage and state           |
| `notify:skip`                 | service/orchestrator           | the "skipped" status of an unbuilt commit     |
| `notify:approval`             | service/approval_step          | the "awaiting approval" post                  |
| `notify:rollout:<action>`     | service/rollout_step           | one deploy post per rollout action kind       |
| `notify:rollout:failed`       | service/rollout_step           | the post of a rollout failed before acting    |
| `rollout:queued`              | service/rollout_step           | the note that a rollout waits for another     |
| `rollout:wait:<phase>`        | service/rollout_step           | the note that a rollout phase waits           |
| `rollout:wait:<phase>:held`   | service/rollout_step           | the note that a quiet window is held          |
| `rollout:look:<at>`           | service/rollout_step           | the look at a rollout scheduled for time `at` |
| `endpoint-op:<action>:<ver>`  | service/rollout_step           | the endpoint operation (deploy, undeploy) of  |
|                               |                                | a version running past one call: its name     |

Keys handed to the backends, which find an earlier submission by them (a retry submits nothing new):

| key                           | used for                                                        |
| ----------------------------- | --------------------------------------------------------------- |
| `<run>:build`                 | the run's image (or checked-out source) build                   |
| `<run>:build-evaluator`       | the base branch's evaluator build of a pull request run         |
| `<run>:<step>`                | the first training or evaluation job (`step`: train, evaluate)  |
| `<run>:<step>:<n>`            | its retry number n (n >= 2)                                     |

Inbox keys (deliveries):

| key                           | used for                                                        |
| ----------------------------- | --------------------------------------------------------------- |
| `github:<X-GitHub-Delivery>`  | a GitHub webhook delivery                                       |
| `pubsub:<function>:<msg id>`  | a Pub/Sub message to an inbound function                        |
| `retrain:<request_id>`        | a retrain request that names its own idempotency key            |
| `wandb:<sha256>`              | a W&B event (W&B sends no id: a digest of what the event names) |
| `<key>#replay-<n>`            | the n-th `relaunch replay` of the delivery `<key>`              |
"""

from __future__ import annotations

from enum import StrEnum

REPLAY_MARK = "#replay-"
RETRAIN_PREFIX = "retrain:"


class Effect(StrEnum):
    """The ledger steps that are the same for every run (a StrEnum: stored as the plain string)."""

    APPROVAL = "approval"
    PROMOTION_APPROVAL = "approval:promotion"  # the verdict on a gated run (approve or reject)
    COST = "cost"
    FETCH = "fetch"
    NOTIFY_SKIP = "notify:skip"
    NOTIFY_APPROVAL = "notify:approval"
    NOTIFY_ROLLOUT_FAILED = "notify:rollout:failed"
    ROLLOUT_QUEUED = "rollout:queued"
    OVERRIDE = "override"  # a person promoted a run its gate had rejected
    ROLLBACK_ASKED = "rollback-asked"  # a person asked to roll a promoted run back (the check run, the dashboard)
    ALIAS_REFUSED = "alias-refused"  # the note that no W&B alias moves for the run (outside `alias:`, the aliases')
    WANDB_SYNC = "wandb-sync"  # relaunch uploaded the W&B runs the jobs logged offline
    WANDB_SYNC_FAILED = "wandb-sync:failed"  # the note that the upload failed (tried again later)


def notify_status(stage: str, state: str) -> str:
    """The ledger step of a stage's status post (`notify:<stage>:<state>`)."""
    return f"notify:{stage}:{state}"


def notify_rollout(action_kind: str) -> str:
    """The ledger step of a rollout action's deploy post (`notify:rollout:<action>`)."""
    return f"notify:rollout:{action_kind}"


def rollout_wait(phase: str) -> str:
    """The ledger step of the note that a rollout waits in `phase` (`rollout:wait:<phase>`)."""
    return f"rollout:wait:{phase}"


def rollout_look(at: float) -> str:
    """The ledger step of the look at a run's rollout scheduled for UNIX time `at` (`rollout:look:<at, ms>`)."""
    return f"rollout:look:{at:.3f}"


def endpoint_operation(action: str, version: str) -> str:
    """The ledger step naming the running endpoint operation (`action`: deploy, undeploy) of `version`: a later
    command or tick polls it instead of starting another (`endpoint-op:<action>:<version>`)."""
    return f"endpoint-op:{action}:{version}"


def button_press(delivery_key: str) -> str:
    """The ledger step of a check-run button press, by its delivery's inbox key (`press:<key>`): GitHub's
    redelivery of it, or the nudge the ingest resends, is handled once."""
    return f"press:{delivery_key}"


def alias_moved(alias: str) -> str:
    """The ledger step of moving a W&B alias: the promote alias or an environment's (`alias:<alias>`)."""
    return f"alias:{alias}"


def build(run_id: str) -> str:
    """The builder's key of the run's build."""
    return f"{run_id}:build"


def evaluator_build(run_id: str) -> str:
    """The builder's key of the evaluator build of a run evaluated by another commit."""
    return f"{run_id}:build-evaluator"


def job(run_id: str, step: str, attempt: int = 1) -> str:
    """The backend's key of a job attempt: the first keeps `<run>:<step>`, retries add their number."""
    return f"{run_id}:{step}" if attempt <= 1 else f"{run_id}:{step}:{attempt}"


def github_delivery(delivery_id: str) -> str:
    """The inbox key of a GitHub delivery."""
    return f"github:{delivery_id}"


def pubsub_delivery(function: str, message_id: str) -> str:
    """The inbox key of a Pub/Sub message to `function` (its message id is unique per topic, not across them)."""
    return f"pubsub:{function}:{message_id}"


def retrain_delivery(request_id: str) -> str:
    """The inbox key of a retrain request that carries its own id (a re-run workflow step sends the same one)."""
    return f"{RETRAIN_PREFIX}{request_id}"


def wandb_delivery(digest: str) -> str:
    """The inbox key of a W&B event, from the hex SHA-256 of what identifies it."""
    return f"wandb:{digest}"


def replay_delivery(key: str, n: int) -> str:
    """The inbox key of the n-th replay of a delivery (a replay of a replay counts from the original's key)."""
    return f"{replay_base(key)}{REPLAY_MARK}{n}"


def replay_base(key: str) -> str:
    """The original delivery's key of a replay key (any other key: itself)."""
    return key.split(REPLAY_MARK, 1)[0]


def is_replay(key: str) -> bool:
    """Whether `key` is the key of a replay."""
    return REPLAY_MARK in key
