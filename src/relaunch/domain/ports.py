"""Narrow ports between the domain's handlers and the world. Adapters implement these; tests use fakes.

Error convention for adapters: raise TransientError for what a retry may fix (the platform redelivers the
command), ValueError for a permanent refusal (the run fails with the message), ConflictError for a lost race.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from relaunch.domain.model import (
    BuildResult,
    DeadLetter,
    Delivery,
    EndpointHealth,
    JobRequest,
    JobStatus,
    ModelVersion,
    Notification,
    PipelineRun,
    TimelineEntry,
)

if TYPE_CHECKING:  # named in signatures only: the spec models these modules import stay unloaded until used
    from relaunch.domain.environments import PromotionRecord
    from relaunch.domain.retention import EnvFolder, StoredBody


class ConflictError(Exception):
    """A concurrent writer changed the run first; the caller should retry (transient)."""


class TransientError(Exception):
    """A dependency is temporarily unavailable; the platform should redeliver the command."""


@dataclass(frozen=True)
class Recorded:
    """What `record_delivery` wrote: truthy when the inbox row was written (False: its key was already known)."""

    written: bool
    held: dict[str, str] = field(default_factory=dict)  # a new run not written -> the run holding its content_key
    # The store committed a start_run command for each run it wrote, with them (the embedded store's outbox): the
    # caller publishes none. False (Firestore, the fakes): the caller publishes them once this returns.
    started: bool = False

    def __bool__(self) -> bool:
        return self.written


class Runs(Protocol):
    """Pipeline runs, saved under optimistic concurrency: the run's `version` is the compare-and-set token."""

    def get_run(self, run_id: str) -> PipelineRun | None: ...

    def save_run(self, run: PipelineRun, entries: Sequence[TimelineEntry] = ()) -> PipelineRun:
        """Write the run if its `version` is still current and append entries to its timeline, atomically.

        Returns the run as stored (its `version` one higher). A stale copy raises ConflictError and changes nothing
        (the caller re-reads and decides again); a run that was never recorded raises KeyError, which is no conflict.
        """

    def list_runs(self, pipeline: str | None = None, limit: int = 50, before: str | None = None) -> list[PipelineRun]:
        """A page of runs, newest first (by `created_at`), optionally of one pipeline. `before` (the last run of the
        previous page) continues after that run, each run listed once however many share a `created_at`; an unknown
        one raises KeyError. A page costs its size, wherever it starts."""

    def active_runs(self, pipeline: str) -> list[PipelineRun]:
        """The pipeline's runs not yet in a terminal state, oldest first."""

    def runs_since(self, pipeline: str, since: float) -> list[PipelineRun]:
        """The pipeline's runs created at or after `since`, newest first (the drift cooldown's window)."""


class Timeline(Protocol):
    """Each run's history, read back in the order it was written (never by the entries' own `at`)."""

    def timeline(self, run_id: str) -> list[TimelineEntry]:
        """The run's entries, oldest first; empty for a run with none."""

    def append_timeline(self, run_id: str, entry: TimelineEntry) -> None:
        """Add one entry after the others (not idempotent: each call adds a line)."""


class Inbox(Protocol):
    """Inbound deliveries, keyed by their delivery key: the row is written before the sender hears 2xx."""

    def record_delivery(self, delivery: Delivery, runs: Sequence[PipelineRun]) -> Recorded:
        """Atomically write the inbox row and its new runs (each with a first "received" entry); nothing if the key
        is known. Any key is valid (":", "/" and "." included).

        A run whose `content_key` an existing run (or an earlier run of the same call) already holds is not written:
        `held` maps it to that run, and the row lists only the runs written. A run id that already exists makes the
        call fail (naming it) and write nothing.
        """

    def get_delivery(self, key: str) -> Delivery | None: ...

    def set_delivery_outcome(self, key: str, outcome: str) -> None:
        """Record what became of a delivery; an unknown key is ignored."""

    def list_deliveries(self, limit: int = 50, source: str | None = None) -> list[Delivery]:
        """Inbox rows of `source` (of every source if None), newest first (by `received_at`), filtered by the store."""


class InboxBodies(Protocol):
    """Retention of inbox bodies: an old row keeps its key, source, outcome and runs, and loses its body."""

    def stored_bodies(self, received_before: float) -> list[StoredBody]:
        """Rows received before the time that still hold a body, oldest first (the bodies themselves not read)."""

    def drop_bodies(self, keys: Sequence[str], received_before: float) -> int:
        """Empty the body of each row of `keys` received before the time, marking it dropped (`body_dropped_at`);
        the bytes freed. Idempotent: a row already without its body, or younger, is left alone."""


class EffectLedger(Protocol):
    """Side effects keyed by (run id, step): a retried step reads what it already did instead of doing it again."""

    def get_effect(self, run_id: str, step: str) -> dict[str, Any] | None:
        """The recorded result of side effect `step` of the run, if it already happened."""

    def put_effect(self, run_id: str, step: str, result: dict[str, Any]) -> None:
        """Record that side effect `step` happened (first write wins; a later write is ignored, not an error)."""

    def list_effects(self, step: str) -> list[dict[str, Any]]:
        """The results of side effect `step` across all runs, oldest first (e.g. the cost ledger)."""


class DeadLetters(Protocol):
    """Messages that will never be processed, kept with the reason for an operator."""

    def dead_letter(self, source: str, reason: str, payload: str) -> None:
        """Keep the message; never refuses one for its size (an implementation may cut a huge payload)."""

    def list_dead_letters(self, limit: int = 100, source: str | None = None) -> list[DeadLetter]:
        """Dead letters, newest first, each with its own id: those of `source` only, or of every source (None)."""


class Lanes(Protocol):
    """Each lane's head: the one run of the lane allowed to build."""

    def lane_head(self, lane: str) -> str | None:
        """The run that holds the lane, if any run ever took it."""

    def take_lane(self, lane: str, expected: str | None, run_id: str) -> bool:
        """Compare-and-set the lane's head from `expected` to `run_id`; False if another run moved it first."""


class StepStore(Runs, Timeline, EffectLedger, Protocol):
    """What an orchestrator step drives a run with: the run, its timeline, and the ledger of its side effects."""


class OrchestratorStore(StepStore, Lanes, Protocol):
    """What the orchestrator hands its steps: a step's store plus the lanes its coalescing moves."""


class CoalesceStore(Runs, Lanes, Protocol):
    """What coalescing needs: the pipeline's runs and the lanes they queue in."""


class IngestStore(Inbox, Runs, DeadLetters, Protocol):
    """What ingestion needs: the inbox, the runs a delivery starts or nudges, and dead letters for what it refuses."""


class RunStore(Inbox, InboxBodies, Runs, Timeline, EffectLedger, DeadLetters, Lanes, Protocol):
    """The whole store, as an adapter implements it: each handler asks only for the concerns it uses."""


class Bus(Protocol):
    """Publishes messages to a topic (Pub/Sub semantics: at-least-once delivery to subscribers)."""

    def publish(
        self,
        topic: str,
        data: dict[str, Any],
        attributes: dict[str, str] | None = None,
        *,
        not_before: float | None = None,
    ) -> str:
        """Durably enqueue; returns the message id. `not_before` (UNIX time): deliver no sooner, where the bus can
        delay a message (the local bus can; Pub/Sub cannot, and only passes the time on as an attribute)."""


class ImageBuilder(Protocol):
    """Produces the training image (or local source tree) for a run's commit."""

    def build(self, run: PipelineRun, key: str) -> BuildResult:
        """Start or finish a build, idempotent on `key`; `image` is None while the build is pending."""


class TrainingBackend(Protocol):
    """Runs training and evaluation jobs."""

    def submit(self, request: JobRequest) -> str:
        """Queue the job, idempotent on request.key; returns the job id."""

    def status(self, job_id: str) -> JobStatus: ...

    def cancel(self, job_id: str) -> None: ...


class BlobStore(Protocol):
    """Reads artifacts by URI (local paths or gs://)."""

    def read_text(self, uri: str) -> str: ...

    def join(self, base: str, *parts: str) -> str: ...

    def stage_read_only(self, src: str, dest: str) -> str:
        """A URI a job may read `src` (a model folder) through but never write back to; idempotent on `dest`.

        Locally a copy of `src` at `dest` (inside the run's own folder); on Cloud Storage `src` itself, which IAM
        makes read-only for the training service account.
        """

    def copy_tree(self, src: str, dest: str) -> str:
        """Copy folder `src` to `dest` once and return `dest`; ValueError if `src` is no model folder or is refused.

        Complete before it returns (a crash part way leaves no finished copy, and the next call completes it); once
        complete, a later call copies nothing and reads nothing of `src`.
        """


class ModelRegistry(Protocol):
    """Registered model versions per pipeline, with a movable champion alias."""

    def register(
        self,
        pipeline: str,
        run_id: str,
        artifact_uri: str,
        metrics: dict[str, float],
        metadata: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """Register the run's model with its provenance (`metadata`); the same run again returns the same version."""

    def content_digest(self, artifact_uri: str) -> str | None:
        """A digest of a model folder's files, to tell a model identical to a registered one (None: cannot tell)."""

    def champion(self, pipeline: str) -> ModelVersion | None: ...

    def set_champion(self, pipeline: str, version: str) -> None: ...

    def get(self, pipeline: str, version: str) -> ModelVersion | None: ...


@runtime_checkable
class EnvironmentAliases(Protocol):
    """One alias per environment (`staging`, `production`) on a pipeline's registered versions."""

    def alias(self, pipeline: str, name: str) -> ModelVersion | None:
        """The version carrying the alias, if any."""

    def set_alias(self, pipeline: str, name: str, version: str) -> None:
        """Move the alias to `version` (KeyError if it is not registered)."""


@runtime_checkable
class PromotionHistory(Protocol):
    """Every promotion into (or rollback in) an environment, kept for its history."""

    def record_promotion(self, record: PromotionRecord) -> None:
        """Keep the record; the same (run, environment, kind, version) again changes nothing."""

    def promotions(self, pipeline: str, environment: str | None = None, limit: int = 50) -> list[PromotionRecord]:
        """The pipeline's records (of one environment), newest first."""


class Endpoint(Protocol):
    """A serving endpoint with several deployed model versions and a traffic split.

    Deploying and undeploying may take longer than a function may live (minutes on Vertex AI): each returns None once
    done, or the name of the operation still running, which the caller records and passes back as `operation` on a
    later call: that call polls it and starts nothing (ValueError with the reason if the operation failed).
    """

    can_address_versions: bool  # whether predict(version=...) reaches a version whatever its share (blue-green)

    def deploy(self, endpoint: str, model: ModelVersion, *, operation: str | None = None) -> str | None:
        """Deploy the version at 0% traffic; deploying it again is a no-op."""

    def set_traffic(self, endpoint: str, split: dict[str, int]) -> None:
        """Set percentages per deployed version (summing to 100)."""

    def undeploy(self, endpoint: str, version: str, *, operation: str | None = None) -> str | None:
        """Remove a version that takes no traffic; an absent version is a no-op."""

    def traffic(self, endpoint: str) -> dict[str, int]: ...

    def predict(self, endpoint: str, instances: list[Any], *, version: str | None = None) -> dict[str, Any]:
        """Predictions (`{"predictions": [...]}`); `version` sends them to that deployed version whatever its share
        (a blue-green smoke test of a version at 0%) where `can_address_versions`; elsewhere only a version taking
        all the traffic can be named."""

    def health(self, endpoint: str, version: str, since: float) -> EndpointHealth:
        """Requests, errors, error rate and p50/p95 latency the endpoint served with `version` since `since`.

        Rollouts judge a canary or a switched version on it. The local endpoint counts its own requests. A Vertex
        implementation reads Cloud Monitoring's metrics for the deployed model id (resource type
        aiplatform.googleapis.com/Endpoint, label deployed_model_id) over [since, now]:
        `aiplatform.googleapis.com/prediction/online/response_count` (requests, by response_code),
        `.../prediction/online/error_count` (errors) and `.../prediction/online/prediction_latencies` (a distribution,
        for p50/p95). Those metrics arrive with a delay of a few minutes: bake times should be longer than that.
        """


class Notifier(Protocol):
    """Reports a stage to the outside world. Must not raise: notifications never block a run."""

    def notify(self, notification: Notification) -> None: ...


@dataclass(frozen=True)
class FetchedArtifact:
    """What ArtifactSource.fetch copied: the concrete version it resolved to, as the backend names it."""

    ref: str  # entity/project/collection:vN of the collection the version was fetched through; never an alias
    artifact_id: str | None = None  # the backend's id of the version (W&B's "QXJ0aWZhY3Q6..."), when it has one
    reported_metrics: dict[str, float] = field(default_factory=dict)  # the producer's summary: shown, never gated on
    metadata: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class VersionPruning(ModelRegistry, Protocol):
    """A registry that can also list and delete versions (housekeeping); the caller decides which may go."""

    def list_versions(self, pipeline: str) -> list[ModelVersion]:
        """All versions of the pipeline, oldest first."""

    def delete_version(self, pipeline: str, version: str) -> bool:
        """Delete the version's entry and files; False if it is not registered. ValueError for the champion."""


class EnvironmentPruning(Protocol):
    """The local build's Python environments, as housekeeping lists and deletes them."""

    def environments(self) -> list[EnvFolder]:
        """Every complete environment with its size and last use."""

    def named_by_checkouts(self) -> dict[str, str]:
        """Checkout folder name -> the environment hash it names."""

    def delete_idle(self, name: str, idle_since: float) -> bool:
        """Delete it unless a build used it after `idle_since` (atomically with builds); True once it is gone."""


class ArtifactSource(Protocol):
    """Model artifacts tracked outside relaunch (W&B), for runs that start from an existing model."""

    def fetch(self, ref: str, dest: str) -> FetchedArtifact:
        """Copy the files of artifact version `ref` (entity/project/name:vN or :alias) to `dest`, replacing it whole.

        An alias is resolved here, once: the result names the concrete version whose files are now at `dest`.
        """

    def set_alias(self, ref: str, alias: str) -> None:
        """Point `alias` at the concrete version `ref` (entity/project/name:vN; an alias is refused); idempotent."""


class RepoPermissions(Protocol):
    """Who may do what on a repository, as its host says (GitHub's collaborator permission API)."""

    def permission(self, repo: str, login: str) -> str:
        """`login`'s permission on `repo`: admin, maintain, write, triage, read or none (none for unknown users).

        TransientError when the host cannot answer now, ValueError when it refuses to (bad token, no access).
        """


class CommitHistory(Protocol):
    """How two commits of a repository stand in its history (git merge-base locally, GitHub's compare API)."""

    def relation(self, repo: str, clone_url: str | None, base: str, head: str) -> str:
        """`head` against `base`: "ahead", "behind" (an ancestor of base), "identical", "diverged" or "unknown".

        A commit the repository does not know is "diverged" (off its history, as a force push leaves it); "unknown"
        means it cannot tell (a bad name or URL). TransientError when the host cannot answer now. The domain reads
        any other answer as "unknown" (domain.champion_age.as_relation).
        """


# -- what the embedded stack supervises: bootstrap builds each, adapters/local/stack.py starts and stops them ---------


class Background(Protocol):
    """A thread or a process the embedded stack runs beside its functions, from `start()` until `stop()`."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class LocalServer(Background, Protocol):
    """A server of the embedded stack that its functions reach at `url` once it is started (the local endpoint)."""

    @property
    def url(self) -> str: ...
