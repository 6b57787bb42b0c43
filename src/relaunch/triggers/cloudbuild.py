"""Cloud Build status messages (the `cloud-builds` topic) to typed events; no I/O.

Cloud Build publishes every status change of a build: the Build resource as JSON in the data and the attributes
`buildId` and `status`. A build relaunch started carries the run id in its substitution `_RELAUNCH_RUN_ID` (or,
for builds made elsewhere, a tag `relaunch-run-<id>`); a build without either belongs to no run. Everything but
the build id and status is optional: early statuses (QUEUED, WORKING) have no results yet.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relaunch.triggers.errors import Unprocessable, check, optional
from relaunch.triggers.pubsub import PubSubMessage

FINAL_STATUSES = frozenset({"SUCCESS", "FAILURE", "INTERNAL_ERROR", "TIMEOUT", "CANCELLED", "EXPIRED"})
RUN_ID_SUBSTITUTION = "_RELAUNCH_RUN_ID"
RUN_TAG_PREFIX = "relaunch-run-"
MAX_ID = 200
# Build.Status names (STATUS_UNKNOWN, PENDING, QUEUED, WORKING, SUCCESS, …); a future one is kept, not refused.
_STATUS = re.compile(r"^[A-Z][A-Z_]{0,39}$")


@dataclass(frozen=True)
class BuildEvent:
    """One status change of a Cloud Build build."""

    build_id: str
    status: str
    run_id: str | None
    images: tuple[str, ...]
    log_url: str | None
    status_detail: str | None = None
    pipeline: str | None = None  # substitution _PIPELINE, when relaunch started the build

    @property
    def final(self) -> bool:
        """The build will not change status again."""
        return self.status in FINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCESS"


def parse_build(message: PubSubMessage) -> BuildEvent:
    """Read a `cloud-builds` message; bad input raises a TriggerError."""
    build = message.json() if message.data.strip() else {}  # attributes alone still say which build and how it went
    substitutions = _substitutions(build)
    return BuildEvent(
        build_id=_build_id(build, message.attributes),
        status=_status(build, message.attributes),
        run_id=_run_id(build, substitutions),
        images=_images(build),
        log_url=optional(build, "logUrl", str),
        status_detail=optional(build, "statusDetail", str),
        pipeline=substitutions.get("_PIPELINE") or None,
    )


def _build_id(build: Mapping[str, Any], attributes: Mapping[str, str]) -> str:
    from_data, from_attribute = optional(build, "id", str), attributes.get("buildId")
    if from_data and from_attribute and from_data != from_attribute:
        raise Unprocessable(f"id {from_data[:80]!r} and attribute buildId {from_attribute[:80]!r} disagree", field="id")
    build_id = (from_data or from_attribute or "").strip()
    if not build_id:
        raise Unprocessable("the build id is missing (data id, attribute buildId)", field="id")
    return _bounded(build_id, "id")


def _status(build: Mapping[str, Any], attributes: Mapping[str, str]) -> str:
    status = (optional(build, "status", str) or attributes.get("status") or "").strip()
    if not status:
        raise Unprocessable("the build status is missing (data status, attribute status)", field="status")
    if not _STATUS.match(status):
        raise Unprocessable(f"status {status[:40]!r} is not a Cloud Build status", field="status")
    return status


def _substitutions(build: Mapping[str, Any]) -> dict[str, str]:
    raw = optional(build, "substitutions", dict) or {}
    return {str(k): check(v, str, f"substitutions.{k}") for k, v in raw.items()}


def _run_id(build: Mapping[str, Any], substitutions: Mapping[str, str]) -> str | None:
    """The substitution when it is set, else the first `relaunch-run-<id>` tag, else None."""
    if substitutions.get(RUN_ID_SUBSTITUTION):
        return _bounded(substitutions[RUN_ID_SUBSTITUTION], f"substitutions.{RUN_ID_SUBSTITUTION}")
    for i, tag in enumerate(optional(build, "tags", list) or []):
        text = check(tag, str, f"tags[{i}]")
        if text.startswith(RUN_TAG_PREFIX) and len(text) > len(RUN_TAG_PREFIX):
            return _bounded(text.removeprefix(RUN_TAG_PREFIX), f"tags[{i}]")
    return None


def _images(build: Mapping[str, Any]) -> tuple[str, ...]:
    """`results.images` (what was pushed) as "name@digest", or the name when no digest is given."""
    images: list[str] = []
    for i, item in enumerate(optional(build, "results.images", list) or []):
        where = f"results.images[{i}]"
        image = check(item, dict, where)
        name = image.get("name")
        if not name:
            raise Unprocessable(f"{where}.name is required", field=f"{where}.name")
        check(name, str, f"{where}.name")
        digest = image.get("digest")
        images.append(f"{name}@{check(digest, str, f'{where}.digest')}" if digest else name)
    return tuple(images)


def _bounded(value: str, field: str) -> str:
    if len(value) > MAX_ID:
        raise Unprocessable(f"{field} is longer than {MAX_ID} characters", field=field)
    return value
