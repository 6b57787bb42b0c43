"""Cloud Scheduler ticks (Pub/Sub target) to typed events; no I/O.

A Pub/Sub-target job publishes its configured data (bytes) and attributes. relaunch reads, in order:

- the attribute `pipeline` (and optionally `reason`, `job`), the data then being free text (the console requires some);
- else the data as a JSON object `{"pipeline": "...", "reason"?: "...", "job"?: "..."}`;
- the CloudEvents `SchedulerJobData` shape `{"customData": "<base64>"}`, decoded and read by the same rules.

Data that starts with "{" must be a valid JSON object (400 otherwise); other data is free text. With no pipeline
named anywhere the tick is a 422 naming "pipeline"; an attribute and data naming different pipelines is one too.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relaunch.triggers.errors import Malformed, Unprocessable, check, decode_json_object
from relaunch.triggers.pubsub import PubSubMessage

PIPELINE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")  # the same rule as PipelineSpec.name
DEFAULT_REASON = "scheduled retrain"
MAX_TEXT = 300


@dataclass(frozen=True)
class ScheduleTick:
    """A scheduled retrain of one pipeline."""

    pipeline: str
    reason: str
    job: str | None


def parse_schedule(message: PubSubMessage) -> ScheduleTick:
    """Read the pipeline a scheduler tick names; bad input raises a TriggerError."""
    attributes = message.attributes
    data = _data_object(message.data, "message.data")
    if "customData" in data:  # a SchedulerJobData CloudEvent forwarded as the data
        data = _data_object(_b64(data["customData"], "message.data.customData"), "message.data.customData")
    sources = (("attribute", (attributes.get("pipeline") or "").strip()), ("data", _str(data, "pipeline")))
    named = {where: name for where, name in sources if name}
    if not named:
        raise Unprocessable('no pipeline: set the attribute pipeline or JSON data {"pipeline": ...}', field="pipeline")
    if len(set(named.values())) > 1:
        shown = ", ".join(f"{where} {name[:80]!r}" for where, name in named.items())
        raise Unprocessable(f"attribute and data name different pipelines: {shown}", field="pipeline")
    pipeline = check_pipeline_name(next(iter(named.values())), "pipeline")
    job = (attributes.get("job") or "").strip() or _str(data, "job") or None
    reason = (attributes.get("reason") or "").strip() or _str(data, "reason")
    reason = reason or (f"{DEFAULT_REASON} ({job})" if job else DEFAULT_REASON)
    return ScheduleTick(pipeline=pipeline, reason=_bounded(reason, "reason"), job=_bounded(job, "job") if job else None)


def check_pipeline_name(value: str, field: str) -> str:
    """`value` if it is a valid pipeline name, else a 422 naming `field`."""
    if not PIPELINE_NAME.match(value):
        raise Unprocessable(f"{field} {value[:80]!r} is not a pipeline name (^[a-z][a-z0-9-]{{0,62}}$)", field=field)
    return value


def _data_object(raw: bytes, field: str) -> dict[str, Any]:
    """The data as a JSON object when it is one (it must be, if it starts with "{"), else {} for free text."""
    if not raw.lstrip().startswith(b"{"):
        return {}
    return decode_json_object(raw, field=field)


def _b64(value: Any, field: str) -> bytes:
    if value is None:
        return b""
    try:
        return base64.b64decode(check(value, str, field), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Malformed(f"{field} is not valid base64", field=field) from exc


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    return "" if value is None else check(value, str, key).strip()


def _bounded(value: str, field: str) -> str:
    if len(value) > MAX_TEXT:
        raise Unprocessable(f"{field} is longer than {MAX_TEXT} characters", field=field)
    return value
