"""The RunStore on Cloud Firestore (native mode): runs, timelines, the inbox, the side-effect ledger, dead letters.

Layout, under a collection prefix P (default "relaunch"):
  P_runs/{run}                 run fields for queries + the whole run as JSON; `version` is the optimistic counter
  P_runs/{run}/timeline/{auto} one entry; ordered by the commit's server timestamp, then its place in the commit
  P_inbox/{delivery key}       one delivery; created in the same batch as its runs
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

from relaunch.adapters.content import split_held
from relaunch.adapters.gcp import google_errors
from relaunch.adapters.gcp.firestore_docs import (
    cut,
    delivery_doc,
    delivery_from,
    doc_id,
    entry_doc,
    promotion_doc,
    promotion_id,
    run_doc,
)
from relaunch.adapters.gcp.firestore_indexes import (
    PROMOTIONS_OF_ENVIRONMENT,
    PROMOTIONS_OF_PIPELINE,
    RUNS_OF_PIPELINE,
    index_errors,
)
from relaunch.adapters.gcp.firestore_pages import pages
from relaunch.domain.environments import PromotionRecord
from relaunch.domain.model import DeadLetter, Delivery, PipelineRun, RunState, TimelineEntry
from relaunch.domain.ports import ConflictError, Recorded
from relaunch.domain.retention import StoredBody


class FirestoreRunStore:
    """RunStore on Firestore; safe for any number of concurrent function instances."""

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

    def _collection(self, name: str) -> Any:
        return self._client.collection(f"{self.prefix}_{name}")

    def _run_ref(self, run_id: str) -> Any:
        return self._collection("runs").document(doc_id(run_id, field="run_id"))

    def _inbox_ref(self, key: str) -> Any:
        return self._collection("inbox").document(doc_id(key, field="delivery key"))

    def _content_ref(self, key: str) -> Any:
        return self._collection("content").document(doc_id(key, field="content_key"))

    def _lane_ref(self, lane: str) -> Any:
        return self._collection("lanes").document(doc_id(lane, field="lane"))

    def _effect_ref(self, run_id: str, step: str) -> Any:
        return self._collection("effects").document(f"{doc_id(run_id, field='run_id')}:{doc_id(step, field='step')}")

    def _timeline_writes(self, run_id: str, entries: Sequence[TimelineEntry]) -> list[tuple[Any, dict[str, Any]]]:
        from google.cloud.firestore import SERVER_TIMESTAMP

        timeline = self._run_ref(run_id).collection("timeline")
        return [(timeline.document(), entry_doc(entry, seq, SERVER_TIMESTAMP)) for seq, entry in enumerate(entries)]

    def _if_unchanged(self, snapshot: Any) -> Any:
        """A write precondition: the document is as `snapshot` read it (its update time), else FailedPrecondition."""
        return self._client.write_option(last_update_time=snapshot.update_time)

    # -- inbox ------------------------------------------------------------------------------------------------

    def record_delivery(self, delivery: Delivery, runs: Sequence[PipelineRun]) -> Recorded:
        """Atomically write the inbox row and its new runs (not those whose content another run holds); see RunStore.

        One batch of create()s: it commits whole or not at all, and each create fails if its document exists. So a
        rival that recorded the same delivery, or claimed one of these contents, between our reads and our commit
        makes it fail; reading again settles it (the delivery is a duplicate, or the content is now held).
        """
        from google.api_core.exceptions import AlreadyExists

        inbox = self._inbox_ref(delivery.key)
        contents = {run.content_key: self._content_ref(run.content_key) for run in runs if run.content_key}
        with google_errors(f"recording delivery {delivery.key}"):
            for _ in range(len(contents) + 2):  # each lost round means one more content is held: it ends
                if inbox.get().exists:
                    return Recorded(False)
                holders = {key: snap.get("run_id") for key, ref in contents.items() if (snap := ref.get()).exists}
                held, fresh = split_held(runs, holders)
                batch = self._client.batch()
                for ref, data in self._delivery_writes(delivery, fresh):
                    batch.create(ref, data)
                try:
                    batch.commit()
                    return Recorded(True, held)
                except AlreadyExists:
                    taken = [run.id for run in fresh if self._run_ref(run.id).get().exists]
                    if taken and not inbox.get().exists:
                        raise ValueError(f"delivery {delivery.key}: run ids already exist: {taken}") from None
            raise ConflictError(f"delivery {delivery.key}: its contents kept being claimed while it was recorded")

    def _delivery_writes(self, delivery: Delivery, runs: Sequence[PipelineRun]) -> list[tuple[Any, dict[str, Any]]]:
        run_ids = list(dict.fromkeys([*delivery.run_ids, *(run.id for run in runs)]))
        writes = [(self._inbox_ref(delivery.key), delivery_doc(delivery, run_ids))]
        for run in runs:
            received = TimelineEntry(kind="state", message="received", data={"to": run.state.value})
            writes += [(self._run_ref(run.id), run_doc(run)), *self._timeline_writes(run.id, [received])]
            if run.content_key:  # create(): a concurrent claim of the same content makes the commit fail
                writes.append((self._content_ref(run.content_key), {"run_id": run.id}))
        return writes

    def get_delivery(self, key: str) -> Delivery | None:
        """The inbox row for `key`, if any."""
        with google_errors(f"reading delivery {key}"):
            snapshot = self._inbox_ref(key).get()
        return delivery_from(snapshot.to_dict() or {}) if snapshot.exists else None

    def set_delivery_outcome(self, key: str, outcome: str) -> None:
        """Record what became of a delivery (e.g. 'ignored: branch not tracked'); unknown keys are ignored."""
        from google.api_core.exceptions import NotFound

        with google_errors(f"updating delivery {key}"):
            try:
                self._inbox_ref(key).update({"outcome": outcome})
            except NotFound:
                pass

    def list_deliveries(self, limit: int = 50) -> list[Delivery]:
        """The inbox, newest first."""
        from google.cloud.firestore import Query

        query = self._collection("inbox").order_by("received_at", direction=Query.DESCENDING).limit(limit)
        with google_errors("listing deliveries"):
            return [delivery_from(snapshot.to_dict() or {}) for snapshot in query.stream()]

    def stored_bodies(self, received_before: float) -> list[StoredBody]:
        """Rows received before the time that still hold a body, oldest first (a range on one field: no index).

        Firestore cannot filter on a body's length: every old row is read, a page at a time, emptied ones included.
        """
        from google.cloud.firestore import FieldFilter

        query = self._collection("inbox").where(filter=FieldFilter("received_at", "<", received_before))
        with google_errors("listing inbox bodies"):
            docs = [snapshot.to_dict() or {} for snapshot in pages(query.order_by("received_at"))]
        return [
            StoredBody(doc["key"], doc["source"], doc["received_at"], doc["outcome"], len(doc["body"].encode()))
            for doc in docs
            if doc.get("body")
        ]

    def drop_bodies(self, keys: Sequence[str], received_before: float) -> int:
        """Empty each row's body if it is still as read (a precondition, no lock); the bytes freed. A row that changed
        meanwhile is left for the next collection."""
        from google.api_core.exceptions import FailedPrecondition, NotFound

        freed = 0
        with google_errors("dropping inbox bodies"):
            for key in keys:
                ref = self._inbox_ref(key)
                snapshot = ref.get()
                doc = (snapshot.to_dict() or {}) if snapshot.exists else {}
                if not doc.get("body") or doc["received_at"] >= received_before:
                    continue
                emptied = {"body": "", "body_truncated": False, "body_dropped_at": time.time()}
                try:
                    ref.update(emptied, option=self._if_unchanged(snapshot))
                except (FailedPrecondition, NotFound):
                    continue
                freed += len(doc["body"].encode())
        return freed

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

    # -- side effects and dead letters ------------------------------------------------------------------------

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

    def dead_letter(self, source: str, reason: str, payload: str) -> None:
        """Keep a message that will never be processed, with the reason (payloads over ~900 kB are cut)."""
        from google.cloud.firestore import SERVER_TIMESTAMP

        payload, truncated = cut(payload)
        data = {"at": time.time(), "written": SERVER_TIMESTAMP, "source": source, "reason": cut(reason)[0]}
        data.update(payload=payload, payload_truncated=truncated)
        with google_errors(f"dead-lettering a message from {source}"):
            self._collection("dead_letters").document().create(data)

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

    def list_dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Dead letters, newest first."""
        from google.cloud.firestore import Query

        query = self._collection("dead_letters").order_by("written", direction=Query.DESCENDING).limit(limit)
        with google_errors("listing dead letters"):
            snapshots = list(query.stream())
        fields = ("at", "source", "reason", "payload")
        return [DeadLetter(id=s.id, **{name: s.get(name) for name in fields}) for s in snapshots]
