"""W&B automation webhook parsing, against payloads rendered from the documented template."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relaunch.triggers.errors import TriggerError
from relaunch.triggers.signing import verify_wandb_signature, wandb_signature
from relaunch.triggers.wandb import WandbEvent, WandbIgnored, parse_wandb

SAMPLES = Path(__file__).parent.parent / "samples" / "wandb"
TOKEN = "wandb-access-token"
SECRET = "wandb-webhook-secret"
# The values of W&B's own troubleshooting script ("Troubleshoot your webhook"), signed as it signs them:
# echo -n "$PAYLOAD" | openssl dgst -sha256 -hmac "$SECRET" -binary | base64
DOCS_PAYLOAD = b'{"key1": "value1", "key2": "value2"}'
DOCS_SECRET = "your_api_secret"
DOCS_SIGNATURE = "4tKqnWHayH0Vdy0mtiM/LbZ7bOGK7h+UrHO5F40Uk8U="


def sample_bytes(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def headers_for(body: bytes, *, token: str | None = TOKEN, secret: str | None = SECRET, **extra: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if secret is not None:
        headers["X-Wandb-Signature"] = wandb_signature(secret, body)
    headers.update(extra)
    return headers


def deliver(payload: dict[str, Any] | bytes, **extra: str) -> WandbEvent | WandbIgnored:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return parse_wandb(headers_for(body, **extra), body, token=TOKEN, secret=SECRET)


def payload(name: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(sample_bytes(name))
    data.update(changes)
    return data


# --- samples ------------------------------------------------------------------------------------------------------


def test_new_version_sample() -> None:
    event = deliver(sample_bytes("CREATE_ARTIFACT.json"))
    assert event == WandbEvent(
        event_type="CREATE_ARTIFACT",
        kind="new_version",
        artifact="acme-ml/churn/churn-model:v4",
        collection="churn-model",
        alias=None,
        entity="acme-ml",
        project="churn",
        author="ada-lovelace",
    )
    assert event.version == "v4"


def test_alias_added_sample() -> None:
    event = deliver(sample_bytes("ADD_ARTIFACT_ALIAS.json"))
    assert isinstance(event, WandbEvent)
    assert (event.kind, event.alias) == ("alias_added", "production")
    assert (event.artifact, event.version) == ("acme-ml/churn/churn-model:production", "production")


@pytest.mark.parametrize("event_type", ["LINK_MODEL", "LINK_ARTIFACT"])
def test_link_samples(event_type: str) -> None:
    event = deliver(sample_bytes(f"{event_type}.json"))
    assert isinstance(event, WandbEvent)
    assert (event.event_type, event.kind, event.alias) == (event_type, "linked", None)
    assert (event.entity, event.project, event.collection) == ("acme-org", "wandb-registry-model", "churn-classifier")


def test_other_event_types_are_ignored_after_authentication() -> None:
    body = sample_bytes("RUN_METRIC.json")
    event = deliver(body)
    assert event == WandbIgnored(
        event_type="RUN_METRIC",
        reason="event RUN_METRIC is not acted on",
        dedupe_key="wandb:" + hashlib.sha256(body).hexdigest(),
    )


def test_event_type_is_upper_cased_and_strings_stripped() -> None:
    event = deliver(payload("CREATE_ARTIFACT.json", event_type="create_artifact", event_author="  "))
    assert isinstance(event, WandbEvent)
    assert (event.event_type, event.kind, event.author) == ("CREATE_ARTIFACT", "new_version", None)


def test_events_are_frozen_values() -> None:
    event = deliver(sample_bytes("CREATE_ARTIFACT.json"))
    assert isinstance(event, WandbEvent)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.artifact = "x"  # type: ignore[misc]


# --- dedupe keys --------------------------------------------------------------------------------------------------


def key(data: dict[str, Any] | bytes) -> str:
    return deliver(data).dedupe_key


def test_dedupe_key_is_stable_across_redeliveries_and_formatting() -> None:
    first = key(sample_bytes("ADD_ARTIFACT_ALIAS.json"))
    reformatted = json.dumps(dict(reversed(list(payload("ADD_ARTIFACT_ALIAS.json").items())))).encode()
    assert first.startswith("wandb:") and len(first) == len("wandb:") + 64
    assert key(sample_bytes("ADD_ARTIFACT_ALIAS.json")) == first == key(reformatted)
    assert key(payload("ADD_ARTIFACT_ALIAS.json", event_author="someone-else")) == first


def test_dedupe_key_differs_by_alias_version_and_kind() -> None:
    base = key(payload("ADD_ARTIFACT_ALIAS.json"))
    staging = payload(
        "ADD_ARTIFACT_ALIAS.json", alias="staging", artifact_version_string="acme-ml/churn/churn-model:staging"
    )
    assert key(staging) != base
    assert key(payload("ADD_ARTIFACT_ALIAS.json", artifact_version_string="acme-ml/churn/churn-model:v5")) != base
    assert key(payload("CREATE_ARTIFACT.json")) != key(payload("LINK_MODEL.json"))


def test_artifact_reference_tells_an_alias_moved_from_a_redelivery() -> None:
    moved = [payload("ADD_ARTIFACT_ALIAS.json", artifact_version=f"wandb-artifact://_id/QXJ0aWZhY3Q6{n}") for n in "12"]
    assert key(moved[0]) != key(moved[1])
    assert key(moved[0]) == key(dict(moved[0]))
    event = deliver(moved[0])
    assert isinstance(event, WandbEvent) and event.artifact_ref == "wandb-artifact://_id/QXJ0aWZhY3Q61"


def test_ignored_dedupe_key_is_the_body_digest() -> None:
    one, two = sample_bytes("RUN_METRIC.json"), sample_bytes("RUN_METRIC.json") + b"\n"
    assert key(one) == key(one) != key(two)


# --- authentication -----------------------------------------------------------------------------------------------


def test_signature_matches_wandbs_documented_script() -> None:
    assert wandb_signature(DOCS_SECRET, DOCS_PAYLOAD) == DOCS_SIGNATURE
    assert verify_wandb_signature(DOCS_SECRET.encode(), DOCS_PAYLOAD, DOCS_SIGNATURE)
    for i in range(len(DOCS_PAYLOAD)):
        changed = DOCS_PAYLOAD[:i] + bytes([DOCS_PAYLOAD[i] ^ 1]) + DOCS_PAYLOAD[i + 1 :]
        assert not verify_wandb_signature(DOCS_SECRET, changed, DOCS_SIGNATURE)
    assert not verify_wandb_signature("", DOCS_PAYLOAD, DOCS_SIGNATURE)
    assert not verify_wandb_signature(DOCS_SECRET, DOCS_PAYLOAD, DOCS_SIGNATURE.encode().hex())
    assert not verify_wandb_signature(DOCS_SECRET, DOCS_PAYLOAD, "é")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl CLI is not installed")
def test_signature_matches_openssl_on_a_sample() -> None:
    body = sample_bytes("CREATE_ARTIFACT.json")
    digest = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", SECRET, "-binary"], input=body, capture_output=True, check=True
    ).stdout
    assert wandb_signature(SECRET, body) == base64.b64encode(digest).decode()


@pytest.mark.parametrize(
    "token, secret, sent_token, sent_secret",
    [
        (TOKEN, None, TOKEN, None),
        (None, SECRET, None, SECRET),
        (TOKEN, SECRET, TOKEN, SECRET),
        ("", SECRET, None, SECRET),
    ],
)
def test_each_configured_credential_is_enough_when_alone(
    token: str | None, secret: str | None, sent_token: str | None, sent_secret: str | None
) -> None:
    body = sample_bytes("CREATE_ARTIFACT.json")
    headers = headers_for(body, token=sent_token, secret=sent_secret)
    assert isinstance(parse_wandb(headers, body, token=token, secret=secret), WandbEvent)


def test_header_names_and_bearer_scheme_are_case_insensitive() -> None:
    body = sample_bytes("CREATE_ARTIFACT.json")
    headers = {k.lower(): v for k, v in headers_for(body).items()}
    headers["authorization"] = f"bearer   {TOKEN} "
    headers["content-type"] = "Application/JSON; charset=UTF-8"
    assert isinstance(parse_wandb(headers, body, token=TOKEN, secret=SECRET), WandbEvent)


# --- bad input ----------------------------------------------------------------------------------------------------

BODY = sample_bytes("CREATE_ARTIFACT.json")


def signed(data: dict[str, Any] | bytes, **extra: Any) -> tuple[dict[str, str], bytes]:
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    return headers_for(body, **extra), body


def without(header: str) -> tuple[dict[str, str], bytes]:
    headers, body = signed(BODY)
    del headers[header]
    return headers, body


Config = tuple[str | None, str | None]
BOTH: Config = (TOKEN, SECRET)
BAD: dict[str, tuple[tuple[dict[str, str], bytes], Config, int, str | None]] = {
    "nothing configured": (signed(BODY), (None, None), 401, None),
    "empty strings configured": (signed(BODY), ("", ""), 401, None),
    "missing token": (without("Authorization"), BOTH, 401, "Authorization"),
    "wrong token": (signed(BODY, token="guess"), BOTH, 401, "Authorization"),
    "token prefix": (signed(BODY, token=TOKEN[:-1]), BOTH, 401, "Authorization"),
    "basic scheme": (signed(BODY, Authorization=f"Basic {TOKEN}"), BOTH, 401, "Authorization"),
    "bare token": (signed(BODY, Authorization=TOKEN), BOTH, 401, "Authorization"),
    "empty bearer": (signed(BODY, Authorization="Bearer "), BOTH, 401, "Authorization"),
    "missing signature": (without("X-Wandb-Signature"), BOTH, 401, "X-Wandb-Signature"),
    "wrong secret": (signed(BODY, secret="not-the-secret"), BOTH, 401, "X-Wandb-Signature"),
    "hex signature": (signed(BODY, **{"X-Wandb-Signature": "ab" * 32}), BOTH, 401, "X-Wandb-Signature"),
    "signature of other body": ((signed(BODY)[0], BODY.replace(b"v4", b"v5")), BOTH, 401, "X-Wandb-Signature"),
    "token but no secret sent": (signed(BODY, secret=None), BOTH, 401, "X-Wandb-Signature"),
    "no content type": (without("Content-Type"), BOTH, 415, "Content-Type"),
    "form encoded": (signed(BODY, **{"Content-Type": "application/x-www-form-urlencoded"}), BOTH, 415, "Content-Type"),
    "latin-1": (signed(BODY, **{"Content-Type": "application/json; charset=latin-1"}), BOTH, 415, "Content-Type"),
    "huge body": (signed(b" " * (1024 * 1024 + 1)), BOTH, 413, None),
    "truncated JSON": (signed(BODY[:-5]), BOTH, 400, None),
    "not UTF-8": (signed(b'{"event_type": "\xff"}'), BOTH, 400, None),
    "JSON array": (signed(b"[]"), BOTH, 400, None),
    "no event_type": (signed(payload("CREATE_ARTIFACT.json", event_type=None)), BOTH, 422, "event_type"),
    "event_type a number": (signed(payload("CREATE_ARTIFACT.json", event_type=3)), BOTH, 422, "event_type"),
    "event_type garbage": (signed(payload("CREATE_ARTIFACT.json", event_type="drop table")), BOTH, 422, "event_type"),
    "unrendered event_type": (signed(payload("RUN_METRIC.json", event_type="${event_type}")), BOTH, 422, "event_type"),
    "no artifact": (signed(payload("CREATE_ARTIFACT.json", artifact_version_string="")), BOTH, 422,
                    "artifact_version_string"),
    "artifact without version": (signed(payload("CREATE_ARTIFACT.json", artifact_version_string="a/b/c")), BOTH, 422,
                                 "artifact_version_string"),
    "artifact two parts": (signed(payload("CREATE_ARTIFACT.json", artifact_version_string="a/c:v1")), BOTH, 422,
                           "artifact_version_string"),
    "artifact a list": (signed(payload("CREATE_ARTIFACT.json", artifact_version_string=["x"])), BOTH, 422,
                        "artifact_version_string"),
    "alias event without alias": (signed(payload("ADD_ARTIFACT_ALIAS.json", alias="")), BOTH, 422, "alias"),
    "alias a number": (signed(payload("ADD_ARTIFACT_ALIAS.json", alias=1)), BOTH, 422, "alias"),
    "no collection": (signed(payload("CREATE_ARTIFACT.json", artifact_collection_name=None)), BOTH, 422,
                      "artifact_collection_name"),
    "no entity": (signed(payload("CREATE_ARTIFACT.json", entity_name="")), BOTH, 422, "entity_name"),
    "project an object": (signed(payload("CREATE_ARTIFACT.json", project_name={})), BOTH, 422, "project_name"),
    "unrendered project": (signed(payload("CREATE_ARTIFACT.json", project_name="${project}")), BOTH, 422,
                           "project_name"),
    "absurd author": (signed(payload("CREATE_ARTIFACT.json", event_author="a" * 600)), BOTH, 422, "event_author"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_maps_to_its_status(case: str) -> None:
    (headers, body), (token, secret), status, field = BAD[case]
    with pytest.raises(TriggerError) as raised:
        parse_wandb(headers, body, token=token, secret=secret)
    assert (raised.value.status, raised.value.field) == (status, field), raised.value


def test_checks_run_in_order_size_type_auth_body() -> None:
    def refusal(headers: dict[str, str], body: bytes) -> tuple[int, str | None]:
        with pytest.raises(TriggerError) as raised:
            parse_wandb(headers, body, token=TOKEN, secret=SECRET, max_body=10)
        return raised.value.status, raised.value.field

    assert refusal({"Content-Type": "text/plain"}, b"x" * 11) == (413, None)
    assert refusal({"Content-Type": "text/plain"}, b"[]") == (415, "Content-Type")
    assert refusal({"Content-Type": "application/json"}, b"[]") == (401, "Authorization")
    assert refusal(headers_for(b"[]"), b"[]") == (400, None)


def test_errors_never_echo_credentials() -> None:
    headers, body = signed(BODY, token="almost-" + TOKEN)
    with pytest.raises(TriggerError) as raised:
        parse_wandb(headers, body, token=TOKEN, secret=SECRET)
    assert TOKEN not in json.dumps(raised.value.to_body()) and TOKEN not in repr(raised.value)


# --- fuzzing: nothing but TriggerError escapes --------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
FIELDS = list(json.loads(BODY)) + ["artifact_version"]


def parse_or_error(headers: dict[str, str], body: bytes) -> None:
    try:
        parse_wandb(headers, body, token=TOKEN, secret=SECRET)
    except TriggerError as exc:
        assert 400 <= exc.status < 500


@given(body=st.binary(max_size=256))
def test_fuzz_signed_bodies(body: bytes) -> None:
    parse_or_error(headers_for(body), body)


@given(headers=st.dictionaries(st.text(max_size=30), st.text(max_size=60), max_size=5), body=st.binary(max_size=64))
def test_fuzz_headers(headers: dict[str, str], body: bytes) -> None:
    parse_or_error(headers, body)
    parse_or_error({**headers_for(body), **headers}, body)


@given(
    name=st.sampled_from(sorted(p.name for p in SAMPLES.glob("*.json"))),
    changes=st.dictionaries(st.sampled_from(FIELDS), json_values | st.text(max_size=40), max_size=3),
)
def test_fuzz_fields_of_samples(name: str, changes: dict[str, Any]) -> None:
    body = json.dumps(payload(name, **changes)).encode()
    parse_or_error(headers_for(body), body)
