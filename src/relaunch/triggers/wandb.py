"""W&B automation webhook deliveries to typed events: authenticate, validate, parse; no I/O.

What W&B sends (W&B docs, "Create a webhook automation" and its "Troubleshoot your webhook" section):

- A POST with `Content-Type: application/json` whose body is the automation's payload template, rendered.
- `Authorization: Bearer <token>` when the webhook has an *access token* secret (also `${ACCESS_TOKEN}` in the body).
- `X-Wandb-Signature` when the webhook has a *secret*: HMAC-SHA256 of the raw body under that secret, base64-encoded
  (the docs' reference script: `openssl dgst -sha256 -hmac "$SECRET" -binary | base64`).
- No delivery id header: redeliveries are recognised by what they say (see `WandbEvent.dedupe_key`).

Payload variables W&B renders: `${event_type}`, `${event_author}`, `${alias}` (the alias added; "" for other events),
`${artifact_version_string}` ("entity/project/name:version"), `${artifact_collection_name}`, `${project_name}`,
`${entity_name}`, `${artifact_version}` (an internal "wandb-artifact://_id/..." reference), `${artifact_metadata.KEY}`,
`${tag}`, `${ACCESS_TOKEN}`, `${SECRET_NAME}`. `${event_type}` renders as the backend's event name: CREATE_ARTIFACT,
ADD_ARTIFACT_ALIAS, LINK_MODEL (which the docs and the SDK call LINK_ARTIFACT), ADD_ARTIFACT_TAG, RUN_METRIC, …

relaunch reads the template the README documents:

    {"event_type": "${event_type}", "artifact_version_string": "${artifact_version_string}",
     "artifact_collection_name": "${artifact_collection_name}", "alias": "${alias}", "entity_name": "${entity_name}",
     "project_name": "${project_name}", "event_author": "${event_author}"}

plus `"artifact_version": "${artifact_version}"`: the docs render `${artifact_version_string}` of an alias event as
"entity/project/name:<alias>", so only that reference tells "production moved to v4" from a redelivery of
"production moved to v3". An alias event whose version string names the alias must carry it (a 422 otherwise: acting
on it could only either run twice on a redelivery or drop a real move as one); other events may omit it.

The artifact acted on is the one the routing fields name. `${artifact_version_string}` must name exactly
`${entity_name}/${project_name}/${artifact_collection_name}` (a mismatch is a 422 naming artifact_version_string
and the routing field), and an alias event's version string names a concrete version (`vN`) or that event's own
`${alias}`. A registry event (LINK_*) routes on the registry's collection: W&B's docs render it as
"<entity>/<registry project>/<registered model>:<version>" with `${project_name}` the registry's project, and that
is the only form accepted. A link event naming the *source* artifact's own path is refused: without a network call
(the webhook budget) nothing proves that source version is linked into the watched collection, whereas fetching it
through the registry's path does (the orchestrator also checks that what the fetch returns is that collection).

Which version, exactly: a `:vN` version string, or `${artifact_version}` (W&B's id of the version), pins it here,
at intake. A version string naming only an alias is resolved once, when the artifact is fetched; the run records
the concrete version and every later step uses it, never the alias again.

Authentication (triggers.verify.verify_wandb) fails closed: with neither a token nor a secret configured every
delivery is refused; each one that is configured is required (both configured: both required), and both are compared
in constant time. This module parses what that step let through.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from relaunch.domain.effects import wandb_delivery
from relaunch.triggers.errors import Unprocessable, check, decode_json_object
from relaunch.triggers.verify import VerifiedDelivery, verify_wandb

MAX_BODY = 1024 * 1024
WandbKind = Literal["new_version", "alias_added", "linked"]
KINDS: dict[str, WandbKind] = {
    "CREATE_ARTIFACT": "new_version",
    "ADD_ARTIFACT_ALIAS": "alias_added",
    "LINK_ARTIFACT": "linked",
    "LINK_MODEL": "linked",
}
MAX_FIELD = 512
# entity/project/name:version-or-alias; W&B refuses "/", ":", "#", "?", "%" and "\" in these names.
_PART = r"[^/:#?%\\\s]+"
ARTIFACT_PATTERN = re.compile(rf"^({_PART})/({_PART})/({_PART}):([\w.-]+)$")
CONCRETE_VERSION = re.compile(r"^v(?:0|[1-9][0-9]*)$")
# ${artifact_version}: "wandb-artifact://_id/<the version's id>" (the SDK's parse_artifact_string reads it so).
ARTIFACT_REF_PATTERN = re.compile(r"^wandb-artifact://_id/([A-Za-z0-9+/=_-]{1,256})$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ROUTING_FIELDS = ("entity_name", "project_name", "artifact_collection_name")
_EVENT_TYPE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")


@dataclass(frozen=True)
class WandbEvent:
    """An artifact event relaunch acts on: a new version, an alias added, or a version linked to a registry."""

    event_type: str
    kind: WandbKind
    artifact: str
    collection: str
    alias: str | None
    entity: str
    project: str
    author: str | None
    artifact_ref: str | None = None  # ${artifact_version} ("wandb-artifact://_id/…"), when the template sends it

    @property
    def dedupe_key(self) -> str:
        """Same event redelivered, same key (W&B sends no delivery id); another alias or version, another key."""
        # An alias event renders artifact as "e/p/name:production" however often the alias moves; ${artifact_version}
        # names the version itself (the parser requires it there), so it joins the key: a move is a new key.
        parts = (self.kind, self.artifact, self.alias or "", *((self.artifact_ref,) if self.artifact_ref else ()))
        return wandb_delivery(hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest())

    @property
    def version(self) -> str:
        """What follows the ":" of `artifact`: "v3", or an alias such as "production"."""
        return self.artifact.rpartition(":")[2]

    @property
    def artifact_id(self) -> str | None:
        """W&B's id of the version, from `artifact_ref`, when the template sends it."""
        return artifact_id_of(self.artifact_ref)


def is_concrete(version: str) -> bool:
    """Whether a version-or-alias names one version for good ("v3"), not an alias that can move ("production")."""
    return CONCRETE_VERSION.match(version) is not None


def artifact_id_of(ref: str | None) -> str | None:
    """The version id inside a "wandb-artifact://_id/<id>" reference (None for None); ValueError if malformed."""
    if ref is None:
        return None
    match = ARTIFACT_REF_PATTERN.match(ref)
    if match is None:
        raise ValueError(f"{ref[:80]!r} is not a wandb-artifact://_id/<id> reference")
    return match[1]


@dataclass(frozen=True)
class WandbIgnored:
    """A verified, well-formed delivery of an event type relaunch does not act on."""

    event_type: str
    reason: str
    dedupe_key: str


def parse_wandb(
    headers: Mapping[str, str],
    body: bytes,
    *,
    token: str | None,
    secret: str | None,
    max_body: int = MAX_BODY,
) -> WandbEvent | WandbIgnored:
    """Authenticate and parse one W&B automation delivery in one call; any bad input raises a TriggerError."""
    return parse_verified_wandb(verify_wandb(headers, body, token=token, secret=secret, max_body=max_body))


def parse_verified_wandb(delivery: VerifiedDelivery) -> WandbEvent | WandbIgnored:
    """The event an authenticated delivery (or one whose check was skipped on purpose) carries."""
    data = decode_json_object(delivery.body)
    event_type = _text(data, "event_type", required=True).upper()
    kind = KINDS.get(event_type)
    if kind is None:
        if not _EVENT_TYPE.match(event_type):
            raise Unprocessable(f"event_type {event_type[:80]!r} is not a W&B event type", field="event_type")
        digest = wandb_delivery(hashlib.sha256(delivery.body).hexdigest())
        return WandbIgnored(event_type=event_type, reason=f"event {event_type} is not acted on", dedupe_key=digest)
    return _event(data, event_type, kind)


def _event(data: dict[str, Any], event_type: str, kind: WandbKind) -> WandbEvent:
    artifact = _text(data, "artifact_version_string", required=True)
    match = ARTIFACT_PATTERN.match(artifact)
    if match is None:
        raise Unprocessable(
            f"artifact_version_string {artifact[:80]!r} is not entity/project/name:version",
            field="artifact_version_string",
        )
    routing = [_text(data, name, required=True) for name in _ROUTING_FIELDS]
    _check_routed(match.groups()[:3], routing)
    alias = _text(data, "alias") or None
    if kind == "alias_added" and alias is None:
        raise Unprocessable("alias is required for ADD_ARTIFACT_ALIAS (put ${alias} in the payload)", field="alias")
    version = match[4]
    if kind == "alias_added" and not is_concrete(version) and version != alias:
        raise Unprocessable(
            f"artifact_version_string names alias {version!r} but the event added alias {alias!r}",
            field="artifact_version_string",
        )
    artifact_ref = _artifact_ref(data)
    if kind == "alias_added" and not is_concrete(version) and artifact_ref is None:
        raise Unprocessable(
            f"artifact_version is required when artifact_version_string names the alias ({artifact[:120]!r}): "
            "without the version's id a move of the alias is indistinguishable from a redelivery (put "
            '"artifact_version": "${artifact_version}" in the payload template)',
            field="artifact_version",
        )
    return WandbEvent(
        event_type=event_type,
        kind=kind,
        artifact=artifact,
        collection=routing[2],
        alias=alias,
        entity=routing[0],
        project=routing[1],
        author=_text(data, "event_author") or None,
        artifact_ref=artifact_ref,
    )


def _check_routed(named: tuple[str, ...], routing: list[str]) -> None:
    """The version string must name the collection the routing fields name: that is the one fetched and promoted."""
    parts = ("entity", "project", "collection")
    for part, actual, field, value in zip(parts, named, _ROUTING_FIELDS, routing, strict=True):
        if actual != value:
            raise Unprocessable(
                f"artifact_version_string names {part} {actual[:80]!r} ({'/'.join(named)[:160]}), "
                f"but {field} is {value[:80]!r}: relaunch acts only on the artifact it routes on",
                field="artifact_version_string",
            )


def _artifact_ref(data: Mapping[str, Any]) -> str | None:
    ref = _text(data, "artifact_version") or None
    if ref is not None and ARTIFACT_REF_PATTERN.match(ref) is None:
        raise Unprocessable(
            f"artifact_version {ref[:80]!r} is not a wandb-artifact://_id/<id> reference (put ${{artifact_version}})",
            field="artifact_version",
        )
    return ref


def _text(data: Mapping[str, Any], field: str, *, required: bool = False) -> str:
    """A rendered template string ("" when absent or null); empty-but-required, too long or unrendered is a 422."""
    value = data.get(field)
    text = "" if value is None else check(value, str, field).strip()
    if not _is_text(text):
        raise Unprocessable(f"{field} is not valid Unicode text (a lone surrogate)", field=field)
    if _CONTROL.search(text):
        raise Unprocessable(f"{field} contains a control character", field=field)
    if required and not text:
        raise Unprocessable(f"{field} is required", field=field)
    if len(text) > MAX_FIELD:
        raise Unprocessable(f"{field} is longer than {MAX_FIELD} characters", field=field)
    if "${" in text:  # an unrendered variable: a template typo; acting on the literal would act on nothing
        raise Unprocessable(f"{field} holds an unrendered template variable: {text[:80]!r}", field=field)
    return text


def _is_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
