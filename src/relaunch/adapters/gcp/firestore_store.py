"""The RunStore on Cloud Firestore (native mode): runs, timelines, the inbox, the side-effect ledger, dead letters.

Layout, under a collection prefix P (default "relaunch"):
  P_runs/{run}                 run fields for queries + the whole run as JSON; `version` is the optimistic counter
  P_runs/{run}/timeline/{auto} one entry; ordered by the commit's server timestamp, then its place in the commit
  P_inbox/{delivery key}       one delivery; created in the same batch as its runs (firestore_inbox: with dead letters)
  P_content/{content key}      the run that holds what a run would do (pipeline, kind, commit); created with it
  P_lanes/{lane}               the run of a lane allowed to build; moved by compare-and-set
  P_effects/{run}:{step}       one side effect; create() makes the first write win
  P_dead_letters/{auto}        newest first by server timestamp
  P_promotions/{p:env:run:kind:version}  one promotion into (or rollback in) an environment; create(): first wins
Document ids are percent-escaped keys, so "github:abc", "pubsub:drift_alert:1" or "a/b" are all valid ids.
Queries need the composite indexes of firestore_indexes.REQUIRED_INDEXES in production (`relaunch deploy` creates
them); the emulator needs none.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from relaunch.adapters.gcp import google_errors
from relaunch.adapters.gcp.firestore_docs import doc_id, promotion_doc, promotion_id, run_doc
from relaunch.adapters.gcp.firestore_inbox import FirestoreInbox
from relaunch.adapters.gcp.firestore_indexes import (
    PROMOTIONS_OF_ENVIRONMENT,
    PROMOTIONS_OF_PIPELINE,
    RUNS_OF_PIPELINE,
    index_errors,
)
from relaunch.adapters.gcp.firestore_pages import pages
from relaunch.domain.environments import PromotionRecord
from relaunch.domain.model import PipelineRun, RunState, TimelineEntry
from relaunch.domain.ports import ConflictError


class FirestoreRunStore(FirestoreInbox):
    """RunStore on Firestore; safe for any number of concurrent function instances (the inbox and dead letters:
    FirestoreInbox, in firestore_inbox)."""

    def __init__(
        self, project: str, *, database: str = "(default)", prefix: str = "relaunch", client: Any | None = None
    ) -> None:
        self._owns_client = client is None
        if client is None:
            from google.cloud import firestore

            client = firestore.Client(project=project, database=database)
        self.project, self.database, self.prefix = project, database, prefix
        self._client = client

    def close(self) -> None:
        """Close the client this store made (a client passed in belongs to the caller)."""
        if self._owns_client:
            self._owns_client = False
            self._client.close()

    def _lane_ref(self, lane: str) -> Any:
        return self._collection("lanes").document(doc_id(lane, field="lane"))

    def _effect_ref(self, run_id: str, step: str) -> Any:
        return self._collection("effects").document(f"{doc_id(run_id, field='run_id')}:{doc_id(step, field='step')}")

    # -- runs -------------------------------------------------------------------------------------------------

    def get_run(self, run_id: str) -> PipelineRun | None:
        """The run with this id, if any."""
        with google_errors(f"reading run {run_id}"):
            snapshot = self._run_ref(run_id).get()
        return PipelineRun.model_validate_json(snapshot.get("json")) if snapshot.exists else None

    def save_run(self, run: PipelineRun, entries: Sequence[TimelineEntry] = ()) -> PipelineRun:
        """Write the run if its `version` is still current (else ConflictError) and append entries, atomically.

        Optimistic, without a lock: the run's update is conditioned on the document being as read, and goes in one
        batch with the entries. (A transaction's locks made racing instances wait out the emulator's 2 s lock timeout,
        round after round, and all lose under load.)
        """
        from google.api_core.exceptions import FailedPrecondition, NotFound

        saved = run.model_copy(update={"version": run.version + 1, "updated_at": time.time()})
        ref = self._run_ref(run.id)
        with google_errors(f"saving run {run.id}"):
            snapshot = ref.get()
            if not snapshot.exists:
                raise KeyError(f"run {run.id} does not exist")
            stored = snapshot.get("version")
            if stored != run.version:
                raise ConflictError(f"run {run.id}: saved at version {run.version}, store has {stored}")
            batch = self._client.batch()
            batch.update(ref, run_doc(saved), option=self._if_unchanged(snapshot))
            for entry_ref, data in self._timeline_writes(run.id, entries):
                batch.create(entry_ref, data)
            try:
                batch.commit()
            except (FailedPrecondition, NotFound):
                raise ConflictError(f"run {run.id}: changed while version {run.version} was being saved") from None
        return saved

    def list_runs(self, pipeline: str | None = None, limit: int = 50, before: str | None = None) -> list[PipelineRun]:
        """A page of runs, newest first, optionally of one pipeline (then through the index RUNS_OF_PIPELINE);
        `before`: the page after this run's, a `start_after` cursor on (created_at, __name__)."""
        from google.cloud.firestore import FieldFilter, Query

        query = self._collection("runs")
        if pipeline is not None:
            query = query.where(filter=FieldFilter("pipeline", "==", pipeline))
        query = query.order_by("created_at", direction=Query.DESCENDING).limit(limit)
        with google_errors("listing runs"), index_errors("listing runs", RUNS_OF_PIPELINE, self.prefix):
            if before is not None:
                cursor = self._run_ref(before).get()
                if not cursor.exists:
                    raise KeyError(f"no run {before!r} to list the runs before")
                query = query.start_after(cursor)
            return [PipelineRun.model_validate_json(snapshot.get("json")) for snapshot in query.stream()]

    def runs_since(self, pipeline: str, since: float) -> list[PipelineRun]:
        """The pipeline's runs created at or after `since`, newest first (the index RUNS_OF_PIPELINE serves it)."""
        from google.cloud.firestore import FieldFilter, Query

        query = self._collection("runs").where(filter=FieldFilter("pipeline", "==", pipeline))
        query = query.where(filter=FieldFilter("created_at", ">=", since))
        query = query.order_by("created_at", direction=Query.DESCENDING)
        with (
            google_errors(f"listing recent runs of {pipeline}"),
            index_errors("listing recent runs", RUNS_OF_PIPELINE, self.prefix),
        ):
            return [PipelineRun.model_validate_json(snapshot.get("json")) for snapshot in pages(query)]

    def active_runs(self, pipeline: str) -> list[PipelineRun]:
        """The pipeline's runs not yet in a terminal state, oldest first (equality filters: no composite index)."""
        from google.cloud.firestore import FieldFilter

        live = [s.value for s in RunState if not s.terminal]
        query = self._collection("runs").where(filter=FieldFilter("pipeline", "==", pipeline))
        query = query.where(filter=FieldFilter("state", "in", live)).order_by("__name__")
        with google_errors(f"listing active runs of {pipeline}"):
            runs = [PipelineRun.model_validate_json(snapshot.get("json")) for snapshot in pages(query)]
        return sorted(runs, key=lambda run: (run.created_at, run.id))

    def timeline(self, run_id: str) -> list[TimelineEntry]:
        """The run's history, oldest first (in the order it was written)."""
        with google_errors(f"reading the timeline of run {run_id}"):
            docs = [
                snapshot.to_dict()
                for snapshot in pages(self._run_ref(run_id).collection("timeline").order_by("__name__"))
            ]
        docs.sort(key=lambda doc: (doc["written"], doc["seq"]))  # a timeline is short: sorting here needs no index
        return [
            TimelineEntry(at=doc["at"], kind=doc["kind"], message=doc["message"], data=json.loads(doc["data"]))
            for doc in docs
        ]

    def append_timeline(self, run_id: str, entry: TimelineEntry) -> None:
        """Add one line to the run's history."""
        [(ref, data)] = self._timeline_writes(run_id, [entry])
        with google_errors(f"appending to the timeline of run {run_id}"):
            ref.create(data)

    # -- side effects -----------------------------------------------------------------------------------------

    def get_effect(self, run_id: str, step: str) -> dict[str, Any] | None:
        """The recorded result of side effect `step` of the run, if it already happened."""
        with google_errors(f"reading effect {step} of run {run_id}"):
            snapshot = self._effect_ref(run_id, step).get()
        return json.loads(snapshot.get("result")) if snapshot.exists else None

    def put_effect(self, run_id: str, step: str, result: dict[str, Any]) -> None:
        """Record that side effect `step` happened (first write wins)."""
        from google.api_core.exceptions import AlreadyExists

        data = {"run_id": run_id, "step": step, "result": json.dumps(result), "at": time.time()}
        with google_errors(f"recording effect {step} of run {run_id}"):
            try:
                self._effect_ref(run_id, step).create(data)
            except AlreadyExists:
                pass

    def list_effects(self, step: str) -> list[dict[str, Any]]:
        """The results of side effect `step` across all runs, oldest first."""
        from google.cloud.firestore import FieldFilter

        query = self._collection("effects").where(filter=FieldFilter("step", "==", step)).order_by("__name__")
        with google_errors(f"listing effects {step}"):
            docs = [snapshot.to_dict() or {} for snapshot in pages(query)]
        docs.sort(key=lambda doc: (doc["at"], doc["run_id"]))  # sorted here: an equality filter needs no index
        return [json.loads(doc["result"]) for doc in docs]

    # -- promotion history ------------------------------------------------------------------------------------

    def record_promotion(self, record: PromotionRecord) -> None:
        """Keep an environment's promotion or rollback (first write wins: a redelivered command changes nothing)."""
        from google.api_core.exceptions import AlreadyExists

        ref = self._collection("promotions").document(promotion_id(record))
        with google_errors(f"recording the promotion of {record.version} into {record.environment}"):
            try:
                ref.create(promotion_doc(record))
            except AlreadyExists:
                pass

    def promotions(self, pipeline: str, environment: str | None = None, limit: int = 50) -> list[PromotionRecord]:
        """The pipeline's records (of one environment), newest first (through PROMOTIONS_OF_PIPELINE/_ENVIRONMENT)."""
        from google.cloud.firestore import FieldFilter, Query

        query = self._collection("promotions").where(filter=FieldFilter("pipeline", "==", pipeline))
        index = PROMOTIONS_OF_PIPELINE
        if environment is not None:
            query, index = query.where(filter=FieldFilter("environment", "==", environment)), PROMOTIONS_OF_ENVIRONMENT
        query = query.order_by("at", direction=Query.DESCENDING).limit(limit)
        with google_errors(f"listing promotions of {pipeline}"), index_errors("listing promotions", index, self.prefix):
            return [PromotionRecord.model_validate_json(snapshot.get("json")) for snapshot in query.stream()]

    # -- lanes ------------------------------------------------------------------------------------------------

    def lane_head(self, lane: str) -> str | None:
        """The run that holds the lane, if any run ever took it."""
        with google_errors(f"reading lane {lane}"):
            snapshot = self._lane_ref(lane).get()
        return str(snapshot.get("run_id")) if snapshot.exists else None

    def take_lane(self, lane: str, expected: str | None, run_id: str) -> bool:
        """Compare-and-set the lane's head: create it, or update it as read (preconditions, no lock); False if
        another run moved it first."""
        from google.api_core.exceptions import AlreadyExists, FailedPrecondition, NotFound

        ref = self._lane_ref(lane)
        head = {"run_id": run_id, "at": time.time()}
        with google_errors(f"taking lane {lane}"):
            snapshot = ref.get()
            if (snapshot.get("run_id") if snapshot.exists else None) != expected:
                return False
            try:
                if snapshot.exists:
                    ref.update(head, option=self._if_unchanged(snapshot))
                else:
                    ref.create(head)
            except (AlreadyExists, FailedPrecondition, NotFound):
                return False
        return True
