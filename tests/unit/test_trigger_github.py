"""GitHub webhook parsing, against GitHub's own published sample payloads and signature vector."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relaunch.triggers.errors import TriggerError, Unprocessable
from relaunch.triggers.github import (
    IgnoredEvent,
    PingEvent,
    PullRequestEvent,
    PushEvent,
    RepositoryDispatchEvent,
    WorkflowDispatchEvent,
    parse_github,
    redact_headers,
)
from relaunch.triggers.signing import github_signature, verify_github_signature

SAMPLES = Path(__file__).parent.parent / "samples" / "github"
SECRET = "webhook-secret"
DELIVERY = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
HEAD = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text())


def headers_for(body: bytes, event: str, *, secret: str = SECRET, **extra: str) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": DELIVERY,
        "X-Hub-Signature-256": github_signature(secret, body),
    }
    headers.update(extra)
    return headers


def deliver(payload: dict[str, Any] | bytes, event: str, **extra: str) -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return parse_github(headers_for(body, event, **extra), body, secret=SECRET)


# --- real samples -------------------------------------------------------------------------------------------------


def test_tag_push_sample() -> None:
    event = deliver(sample("push.1.json"), "push")
    assert isinstance(event, PushEvent)
    assert (event.ref, event.tag, event.branch) == ("refs/tags/simple-tag", "simple-tag", None)
    assert event.repo == "Codertocat/Hello-World" and not hasattr(event, "clone_url")  # a run clones the spec's URL
    assert (event.sha, event.before) == (HEAD, "0" * 40)
    assert (event.created, event.deleted, event.forced) == (True, False, False)
    assert (event.pusher, event.head_message, event.delivery_id) == ("Codertocat", "Adding a .gitignore file", DELIVERY)
    # A new tag lists no commits; that means "unknown", not "nothing changed".
    assert event.commit_count == 0 and event.changed_paths is None


def test_branch_push_sample() -> None:
    event = deliver(sample("push.2.json"), "push")
    assert isinstance(event, PushEvent)
    assert (event.branch, event.tag, event.sha) == ("master", None, HEAD)
    assert event.changed_paths == frozenset({"README.md"})
    assert event.commit_count == 1 and event.head_message == "Initial commit"


def test_ping_sample() -> None:
    event = deliver(sample("ping.1.json"), "ping")
    assert event == PingEvent(
        delivery_id=DELIVERY,
        hook_id=109948940,
        zen="Anything added dilutes everything else.",
        repo="Octocoders/Hello-World",
    )


def test_ping_from_an_organization_hook_has_no_repo() -> None:
    payload = sample("ping.1.json")
    del payload["repository"]
    assert deliver(payload, "ping").repo is None


@pytest.mark.parametrize(
    "name, action", [("pull_request.opened.1.json", "opened"), ("pull_request.synchronize.1.json", "synchronize")]
)
def test_pull_request_samples(name: str, action: str) -> None:
    event = deliver(sample(name), "pull_request")
    assert event == PullRequestEvent(
        delivery_id=DELIVERY,
        action=action,
        number=2,
        repo="Codertocat/Hello-World",
        head_repo="Codertocat/Hello-World",
        head_sha="ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        head_ref="changes",
        base_sha="f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
        base_ref="master",
        author="Codertocat",
        sender="Codertocat",
    )


def test_pull_request_from_a_deleted_fork_has_no_head_repo_and_counts_as_a_fork() -> None:
    payload = sample("pull_request.opened.1.json")
    payload["pull_request"]["head"]["repo"] = None
    event = deliver(payload, "pull_request")
    assert event.head_repo is None and event.from_fork


def test_workflow_dispatch_sample() -> None:
    event = deliver(sample("workflow_dispatch.1.json"), "workflow_dispatch")
    assert event == WorkflowDispatchEvent(
        delivery_id=DELIVERY,
        repo="octo-org/octo-repo",
        ref="refs/heads/main",
        inputs={},
        sender="octocat",
        workflow=".github/workflows/hello-world-workflow.yml",
    )


def test_workflow_dispatch_inputs_become_strings() -> None:
    payload = sample("workflow_dispatch.1.json")
    payload["inputs"] = {"pipeline": "churn", "force": True, "epochs": 3}
    assert deliver(payload, "workflow_dispatch").inputs == {"pipeline": "churn", "force": "true", "epochs": "3"}
    payload["inputs"] = None
    assert deliver(payload, "workflow_dispatch").inputs == {}


def test_repository_dispatch_sample() -> None:
    event = deliver(sample("repository_dispatch.1.json"), "repository_dispatch")
    assert event == RepositoryDispatchEvent(
        delivery_id=DELIVERY,
        repo="octo-org/octo-repo",
        action="on-demand-test",
        client_payload={"unit": "false", "integration": "true"},
        sender="Codertocat",
    )
    assert event.event == "repository_dispatch"


def test_repository_dispatch_client_payload_becomes_strings() -> None:
    payload = sample("repository_dispatch.1.json")
    payload["client_payload"] = {"artifact_version_string": "acme/churn/model:v4", "epochs": 3, "lr": 0.5}
    event = deliver(payload, "repository_dispatch")
    assert event.client_payload == {"artifact_version_string": "acme/churn/model:v4", "epochs": "3", "lr": "0.5"}
    payload["client_payload"] = None
    assert deliver(payload, "repository_dispatch").client_payload == {}
    del payload["sender"]
    assert deliver(payload, "repository_dispatch").sender is None


def test_other_events_are_ignored_after_verification() -> None:
    event = deliver(sample("ping.1.json"), "issues")
    assert isinstance(event, IgnoredEvent)
    assert (event.event, event.delivery_id) == ("issues", DELIVERY)


def test_events_are_frozen_values() -> None:
    event = deliver(sample("push.2.json"), "push")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.sha = "x"  # type: ignore[misc]
    assert event == deliver(sample("push.2.json"), "push")


def test_headers_are_case_insensitive_and_charset_is_accepted() -> None:
    body = json.dumps(sample("push.2.json")).encode()
    headers = {k.upper(): v for k, v in headers_for(body, "push").items()}
    headers["CONTENT-TYPE"] = "application/json; charset=utf-8"
    assert isinstance(parse_github(headers, body, secret=SECRET), PushEvent)


def test_form_encoded_delivery_is_decoded() -> None:
    body = urlencode({"payload": json.dumps(sample("push.2.json"))}).encode()
    headers = headers_for(body, "push", **{"Content-Type": "application/x-www-form-urlencoded"})
    event = parse_github(headers, body, secret=SECRET.encode())
    assert isinstance(event, PushEvent) and event.branch == "master"


# --- changed paths ------------------------------------------------------------------------------------------------


def push_with(commits: list[dict[str, Any]], **fields: Any) -> PushEvent:
    payload = sample("push.2.json")
    payload.update(commits=commits, created=False, before="f" * 40, **fields)
    event = deliver(payload, "push")
    assert isinstance(event, PushEvent)
    return event


def commit(added: list[Any] = [], modified: list[Any] = [], removed: list[Any] = []) -> dict[str, Any]:  # noqa: B006
    return {"id": "x", "added": added, "modified": modified, "removed": removed}


def test_changed_paths_union_added_modified_removed() -> None:
    event = push_with([commit(added=["a.py"]), commit(modified=["b.py"], removed=["c.py"]), commit(modified=["a.py"])])
    assert event.changed_paths == {"a.py", "b.py", "c.py"} and event.commit_count == 3


def test_changed_paths_unknown_when_commits_may_be_truncated() -> None:
    assert push_with([commit(added=[f"{i}.py"]) for i in range(19)]).changed_paths is not None
    assert push_with([commit(added=[f"{i}.py"]) for i in range(20)]).changed_paths is None


def test_changed_paths_unknown_for_deleted_refs_and_lists_without_files() -> None:
    assert push_with([], deleted=True, after="0" * 40, head_commit=None).changed_paths is None
    assert push_with([{"id": "x", "message": "no file lists (as in Actions' payload)"}]).changed_paths is None
    assert push_with([]).changed_paths == frozenset()


# --- signatures ---------------------------------------------------------------------------------------------------


def test_githubs_published_signature_vector() -> None:
    vector = json.loads((SAMPLES / "signature_vector.json").read_text())
    payload = vector["payload"].encode()
    assert github_signature(vector["secret"], payload) == vector["x_hub_signature_256"]
    assert verify_github_signature(vector["secret"], payload, vector["x_hub_signature_256"])
    assert verify_github_signature(vector["secret"].encode(), payload, vector["x_hub_signature_256"])
    for i in range(len(payload)):
        changed = payload[:i] + bytes([payload[i] ^ 1]) + payload[i + 1 :]
        assert not verify_github_signature(vector["secret"], changed, vector["x_hub_signature_256"])
    assert not verify_github_signature("", payload, vector["x_hub_signature_256"])
    assert not verify_github_signature(vector["secret"], payload, "sha256=é")


# --- bad input ----------------------------------------------------------------------------------------------------

PUSH = json.dumps(sample("push.2.json")).encode()
FORM = "application/x-www-form-urlencoded"


def mutated(path: str, value: Any) -> dict[str, Any]:
    payload = copy.deepcopy(sample("push.2.json"))
    *parents, last = path.split(".")
    node = payload
    for key in parents:
        node = node[key]
    node[last] = value
    return payload


def signed(payload: dict[str, Any] | bytes, **extra: str) -> tuple[dict[str, str], bytes]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return headers_for(body, "push", **extra), body


def without(header: str) -> tuple[dict[str, str], bytes]:
    headers, body = signed(PUSH)
    del headers[header]
    return headers, body


BAD_INPUTS: dict[str, tuple[tuple[dict[str, str], bytes], str | None, int, str | None]] = {
    "missing signature": (without("X-Hub-Signature-256"), SECRET, 401, "X-Hub-Signature-256"),
    "wrong signature": (signed(PUSH, **{"X-Hub-Signature-256": "sha256=" + "0" * 64}), SECRET, 401, None),
    "sha1 only": (signed(PUSH, **{"X-Hub-Signature-256": github_signature(SECRET, PUSH)[7:]}), SECRET, 401, None),
    "wrong secret": (signed(PUSH, secret="not-the-secret"), SECRET, 401, "X-Hub-Signature-256"),
    "no secret configured": (signed(PUSH), None, 401, None),
    "empty secret configured": (signed(PUSH), "", 401, None),
    "body changed after signing": ((signed(PUSH)[0], PUSH.replace(b"master", b"mister")), SECRET, 401, None),
    "missing event header": (without("X-GitHub-Event"), SECRET, 400, "X-GitHub-Event"),
    "missing delivery header": (without("X-GitHub-Delivery"), SECRET, 400, "X-GitHub-Delivery"),
    "absurd delivery id": (signed(PUSH, **{"X-GitHub-Delivery": "d" * 500}), SECRET, 400, "X-GitHub-Delivery"),
    "no content type": (without("Content-Type"), SECRET, 415, "Content-Type"),
    "text/plain": (signed(PUSH, **{"Content-Type": "text/plain"}), SECRET, 415, "Content-Type"),
    "latin-1 charset": (signed(PUSH, **{"Content-Type": "application/json; charset=latin-1"}), SECRET, 415, None),
    "form without payload": (signed(b"x=1", **{"Content-Type": FORM}), SECRET, 400, "payload"),
    "form not decodable": (signed(b"payload=%ff", **{"Content-Type": FORM}), SECRET, 400, "payload"),
    "truncated JSON": (signed(PUSH[:-10]), SECRET, 400, None),
    "not UTF-8": (signed(b'{"ref": "\xff\xfe"}'), SECRET, 400, None),
    "UTF-16": (signed(PUSH.decode().encode("utf-16")), SECRET, 400, None),
    "JSON array": (signed(b"[1, 2]"), SECRET, 400, None),
    "deep nesting": (signed(b"[" * 100_000 + b"]" * 100_000), SECRET, 400, None),
    "huge body": (signed(b" " * (5 * 1024 * 1024 + 1)), SECRET, 413, None),
    "full_name a number": (signed(mutated("repository.full_name", 42)), SECRET, 422, "repository.full_name"),
    "repository a string": (signed(mutated("repository", "x")), SECRET, 422, "repository"),
    "missing ref": (signed(mutated("ref", None)), SECRET, 422, "ref"),
    "after a list": (signed(mutated("after", [])), SECRET, 422, "after"),
    "created a string": (signed(mutated("created", "yes")), SECRET, 422, "created"),
    "commits an object": (signed(mutated("commits", {})), SECRET, 422, "commits"),
    "commit path a number": (signed(mutated("commits", [commit(added=[1])])), SECRET, 422, "commits[0].added[0]"),
    "commit not an object": (signed(mutated("commits", ["abc"])), SECRET, 422, "commits[0]"),
    "pusher name a bool": (signed(mutated("pusher.name", True)), SECRET, 422, "pusher.name"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_maps_to_its_status(case: str) -> None:
    (headers, body), secret, status, field = BAD_INPUTS[case]
    with pytest.raises(TriggerError) as raised:
        parse_github(headers, body, secret=secret)
    assert raised.value.status == status, raised.value
    if field is not None:
        assert raised.value.field == field
    assert raised.value.to_body() == {"error": raised.value.message, "field": raised.value.field}


def test_checks_run_in_order_size_type_signature_headers_body() -> None:
    unsigned = {"Content-Type": "text/plain"}
    assert refusal(unsigned, b"x" * 11, max_body=10) == (413, None)
    assert refusal(unsigned, b"[]") == (415, "Content-Type")
    assert refusal({"Content-Type": "application/json"}, b"[]") == (401, "X-Hub-Signature-256")
    no_event = {k: v for k, v in headers_for(b"[]", "push").items() if k != "X-GitHub-Event"}
    assert refusal(no_event, b"[]") == (400, "X-GitHub-Event")


def refusal(headers: dict[str, str], body: bytes, max_body: int = 1024) -> tuple[int, str | None]:
    with pytest.raises(TriggerError) as raised:
        parse_github(headers, body, secret=SECRET, max_body=max_body)
    return raised.value.status, raised.value.field


@pytest.mark.parametrize(
    "event, path, value, field",
    [
        ("pull_request", "number", "2", "number"),
        ("pull_request", "number", True, "number"),
        ("pull_request", "pull_request.head", None, "pull_request.head.sha"),
        ("pull_request", "pull_request.base.ref", 1, "pull_request.base.ref"),
        ("ping", "hook_id", "109948940", "hook_id"),
        ("workflow_dispatch", "inputs", ["a"], "inputs"),
        ("workflow_dispatch", "inputs", {"nested": {"a": 1}}, "inputs.nested"),
        ("repository_dispatch", "action", None, "action"),
        ("repository_dispatch", "action", "", "action"),
        ("repository_dispatch", "action", 1, "action"),
        ("repository_dispatch", "repository.full_name", None, "repository.full_name"),
        ("repository_dispatch", "client_payload", "x", "client_payload"),
        ("repository_dispatch", "client_payload", {"nested": {"a": 1}}, "client_payload.nested"),
        ("repository_dispatch", "client_payload", {"list": [1]}, "client_payload.list"),
        ("repository_dispatch", "client_payload", {"none": None}, "client_payload.none"),
        ("repository_dispatch", "sender.login", 5, "sender.login"),
    ],
)
def test_wrong_types_in_other_events_name_the_field(event: str, path: str, value: Any, field: str) -> None:
    name = {"pull_request": "pull_request.opened.1.json", "ping": "ping.1.json"}.get(event, f"{event}.1.json")
    payload = sample(name)
    *parents, last = path.split(".")
    node = payload
    for key in parents:
        node = node[key]
    node[last] = value
    with pytest.raises(Unprocessable) as raised:
        deliver(payload, event)
    assert (raised.value.status, raised.value.field) == (422, field)


def test_redact_headers_masks_secrets_and_keeps_the_rest() -> None:
    headers = headers_for(PUSH, "push", Authorization="Bearer t", cookie="c=1", **{"x-wandb-signature": "s"})
    redacted = redact_headers(headers)
    assert redacted["X-GitHub-Delivery"] == DELIVERY and redacted["Content-Type"] == "application/json"
    for name in ("X-Hub-Signature-256", "Authorization", "cookie", "x-wandb-signature"):
        assert redacted[name] == "[redacted]"
    assert github_signature(SECRET, PUSH) not in json.dumps(redacted)


# --- fuzzing: nothing but TriggerError escapes --------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
USED_PATHS = {
    "push": ["ref", "after", "before", "created", "deleted", "forced", "commits", "repository", "repository.full_name",
             "repository.clone_url", "pusher", "pusher.name", "head_commit", "head_commit.message"],
    "ping": ["hook_id", "zen", "repository", "repository.full_name"],
    "pull_request": ["action", "number", "pull_request", "pull_request.head", "pull_request.head.repo",
                     "pull_request.base", "pull_request.user", "repository"],
    "workflow_dispatch": ["ref", "inputs", "sender", "repository"],
    "repository_dispatch": ["action", "client_payload", "sender", "sender.login", "repository",
                            "repository.full_name"],
}  # fmt: skip
SAMPLE_FOR = {
    "push": "push.2.json",
    "ping": "ping.1.json",
    "pull_request": "pull_request.opened.1.json",
    "workflow_dispatch": "workflow_dispatch.1.json",
    "repository_dispatch": "repository_dispatch.1.json",
}


def parse_or_error(headers: dict[str, str], body: bytes, secret: str | None = SECRET) -> None:
    try:
        parse_github(headers, body, secret=secret)
    except TriggerError as exc:
        assert 400 <= exc.status < 500


@given(body=st.binary(max_size=512), event=st.sampled_from([*USED_PATHS, "issues"]))
def test_fuzz_signed_bodies(body: bytes, event: str) -> None:
    parse_or_error(headers_for(body, event), body)


@given(headers=st.dictionaries(st.text(max_size=30), st.text(max_size=80), max_size=6), body=st.binary(max_size=64))
def test_fuzz_headers(headers: dict[str, str], body: bytes) -> None:
    parse_or_error(headers, body)
    parse_or_error({**headers_for(body, "push"), **headers}, body)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), value=json_values)
def test_fuzz_used_fields_of_real_samples(data: st.DataObject, value: Any) -> None:
    event = data.draw(st.sampled_from(list(USED_PATHS)))
    path = data.draw(st.sampled_from(USED_PATHS[event]))
    payload = sample(SAMPLE_FOR[event])
    *parents, last = path.split(".")
    node: Any = payload
    for key in parents:
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node[last] = value
    body = json.dumps(payload).encode()
    parse_or_error(headers_for(body, event), body)


@given(commits=st.lists(json_values, max_size=25))
def test_fuzz_commit_lists(commits: list[Any]) -> None:
    body = json.dumps(mutated("commits", commits)).encode()
    parse_or_error(headers_for(body, "push"), body)
