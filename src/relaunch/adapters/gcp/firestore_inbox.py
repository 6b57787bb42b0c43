"""The Firestore run store's inbox and dead letters (FirestoreRunStore inherits them), on the documents both share.

`FirestoreDocuments` names the store's collections and documents; `FirestoreInbox` writes and lists deliveries
(P_inbox) and dead letters (P_dead_letters). The layout is described in firestore_store.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from relaunch.adapters.content import split_held
from relaunch.adapters.gcp import google_errors
from relaunch.adapters.gcp.firestore_docs import cut, delivery_doc, delivery_from, doc_id, entry_doc, run_doc
from relaunch.adapters.gcp.firestore_indexes import DEAD_LETTERS_OF_SOURCE, INBOX_OF_SOURCE, index_errors
from relaunch.adapters.gcp.firestore_pages import pages
from relaunch.domain.model import DeadLetter, Delivery, PipelineRun, TimelineEntry
from relaunch.domain.ports import ConflictError, Recorded
from relaunch.domain.retention import StoredBody


class FirestoreDocuments:
    """The store's collections (named `{prefix}_{name}`) and the documents of runs, deliveries and contents."""

    _client: Any
    prefix: str

    def _collection(self, name: str) -> Any:
        return self._client.collection(f"{self.prefix}_{name}")

    def _run_ref(self, run_id: str) -> Any:
        return self._collection("runs").document(doc_id(run_id, field="run_id"))

    def _inbox_ref(self, key: str) -> Any:
        return self._collection("inbox").document(doc_id(key, field="delivery key"))

    def _content_ref(self, key: str) -> Any:
        return self._collection("content").document(doc_id(key, field="content_key"))

    def _timeline_writes(self, run_id: str, entries: Sequence[TimelineEntry]) -> list[tuple[Any, dict[str, Any]]]:
        from google.cloud.firestore import SERVER_TIMESTAMP

        timeline = self._run_ref(run_id).collection("timeline")
        return [(timeline.document(), entry_doc(entry, seq, SERVER_TIMESTAMP)) for seq, entry in enumerate(entries)]

    def _if_unchanged(self, snapshot: Any) -> Any:
        """A write precondition: the document is as `snapshot` read it (its update time), else FailedPrecondition."""
        return self._client.write_option(last_update_time=snapshot.update_time)


class FirestoreInbox(FirestoreDocuments):
    """The Inbox, InboxBodies and DeadLetters ports on Firestore."""

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

    def list_deliveries(self, limit: int = 50, source: str | None = None) -> list[Delivery]:
        """The inbox (of one source: through the index INBOX_OF_SOURCE), newest first."""
        from google.cloud.firestore import FieldFilter, Query

        query = self._collection("inbox")
        if source is not None:
            query = query.where(filter=FieldFilter("source", "==", source))
        query = query.order_by("received_at", direction=Query.DESCENDING).limit(limit)
        with google_errors("listing deliveries"), index_errors("listing deliveries", INBOX_OF_SOURCE, self.prefix):
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

    # -- dead letters -----------------------------------------------------------------------------------------

    def dead_letter(self, source: str, reason: str, payload: str) -> None:
        """Keep a message that will never be processed, with the reason (payloads over ~900 kB are cut)."""
        from google.cloud.firestore import SERVER_TIMESTAMP

        payload, truncated = cut(payload)
        data = {"at": time.time(), "written": SERVER_TIMESTAMP, "source": source, "reason": cut(reason)[0]}
        data.update(payload=payload, payload_truncated=truncated)
        with google_errors(f"dead-lettering a message from {source}"):
            self._collection("dead_letters").document().create(data)

    def list_dead_letters(self, limit: int = 100, source: str | None = None) -> list[DeadLetter]:
        """Dead letters (of one source: through the index DEAD_LETTERS_OF_SOURCE), newest first."""
        from google.cloud.firestore import FieldFilter, Query

        query = self._collection("dead_letters")
        if source is not None:
            query = query.where(filter=FieldFilter("source", "==", source))
        query = query.order_by("written", direction=Query.DESCENDING).limit(limit)
        with (
            google_errors("listing dead letters"),
            index_errors("listing dead letters", DEAD_LETTERS_OF_SOURCE, self.prefix),
        ):
            snapshots = list(query.stream())
        fields = ("at", "source", "reason", "payload")
        return [DeadLetter(id=s.id, **{name: s.get(name) for name in fields}) for s in snapshots]
