"""Firestore documents of the store: escaped ids, size limits, and the mapping of runs, entries and deliveries."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from relaunch.domain.environments import PromotionRecord
from relaunch.domain.model import Delivery, PipelineRun, TimelineEntry

MAX_ID_BYTES = 1500  # Firestore's limit on a document id
MAX_TEXT_BYTES = 900_000  # a document holds at most 1 MiB: larger bodies and payloads are cut to this


def doc_id(key: str, *, field: str = "key") -> str:
    """A Firestore document id for any key: percent-escaped (reversible by urllib.parse.unquote)."""
    if not key:
        raise ValueError(f"{field} must not be empty")
    escaped = quote(key, safe="-_.~")
    if escaped.startswith((".", "__")):  # ".", ".." and "__*__" are reserved ids
        escaped = f"%{ord(escaped[0]):02X}{escaped[1:]}"
    if len(escaped) > MAX_ID_BYTES:
        raise ValueError(f"{field} is too long for a Firestore document id ({len(escaped)} > {MAX_ID_BYTES} bytes)")
    return escaped


def cut(text: str, limit: int = MAX_TEXT_BYTES) -> tuple[str, bool]:
    """`text` cut to at most `limit` UTF-8 bytes (on a character boundary), and whether it was cut."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text, False
    return encoded[:limit].decode(errors="ignore"), True


def run_doc(run: PipelineRun) -> dict[str, Any]:
    """The run's queryable fields next to the whole run as JSON (what get_run returns, exactly)."""
    return {
        "pipeline": run.pipeline,
        "state": run.state.value,
        "version": run.version,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "json": run.model_dump_json(),
    }


def entry_doc(entry: TimelineEntry, seq: int, written: Any) -> dict[str, Any]:
    data = json.dumps(entry.data)
    return {"at": entry.at, "kind": entry.kind, "message": entry.message, "data": data, "written": written, "seq": seq}


def delivery_doc(delivery: Delivery, run_ids: list[str]) -> dict[str, Any]:
    body, truncated = cut(delivery.body)
    return {
        "key": delivery.key,
        "source": delivery.source,
        "received_at": delivery.received_at,
        "headers": json.dumps(delivery.headers),
        "body": body,
        "body_truncated": truncated,
        "outcome": delivery.outcome,
        "run_ids": run_ids,
    }


def delivery_from(doc: dict[str, Any]) -> Delivery:
    return Delivery(
        key=doc["key"],
        source=doc["source"],
        received_at=doc["received_at"],
        headers=json.loads(doc["headers"]),
        body=doc["body"],
        outcome=doc["outcome"],
        run_ids=list(doc["run_ids"]),
        body_dropped_at=doc.get("body_dropped_at"),
    )


def promotion_id(record: PromotionRecord) -> str:
    """One document per (pipeline, environment, run, kind, version): the second write of the same record is refused."""
    parts = (record.pipeline, record.environment, record.run_id, record.kind, record.version)
    joined = ":".join(doc_id(part, field="promotion key") for part in parts)  # ':' is escaped inside each part
    if len(joined) > MAX_ID_BYTES:
        raise ValueError(
            f"promotion key is too long for a Firestore document id ({len(joined)} > {MAX_ID_BYTES} bytes)"
        )
    return joined


def promotion_doc(record: PromotionRecord) -> dict[str, Any]:
    """The record's queried fields next to the whole record as JSON (what `promotions` returns, exactly)."""
    return {
        "pipeline": record.pipeline,
        "environment": record.environment,
        "at": record.at,
        "json": record.model_dump_json(),
    }
