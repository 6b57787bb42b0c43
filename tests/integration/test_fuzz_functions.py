"""Every function, fed valid samples with hostile JSON at random paths: a 4xx or processed, never a 5xx nor an ERROR."""

from __future__ import annotations

import base64
import itertools
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relaunch import bootstrap
from relaunch.simulate import (
    cloud_build_message,
    github_headers,
    monitoring_incident,
    retrain_data,
    schedule_data,
    wandb_payload,
)
from tests.integration.test_functions import SAMPLES, SOURCE, pubsub_event, wandb_headers
from tests.integration.test_functions import settings as relaunch_settings

HOLE = "\u0000hostile\u0000"  # a marker json.dumps writes as "\u0000hostile\u0000", swapped for raw JSON text
MARK = json.dumps(HOLE).encode()
FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
_ids = itertools.count()


def sample(path: str) -> dict[str, Any]:
    return dict(json.loads((SAMPLES / path).read_text()))


def digits_push() -> dict[str, Any]:
    """push.2 cut to the fields the parser reads, for a watched repository: each path is likelier to matter."""
    push = sample("github/push.2.json")
    keep = ("ref", "before", "after", "created", "deleted", "forced", "pusher", "sender", "head_commit")
    cut = {key: push[key] for key in keep}
    cut["repository"] = {"full_name": "relaunch-demo/digits", "clone_url": push["repository"]["clone_url"]}
    cut["commits"] = [{k: commit[k] for k in ("id", "message", "timestamp", "author")} for commit in push["commits"]]
    return cut


GITHUB = [
    ("push", sample("github/push.1.json")),
    ("push", digits_push()),
    ("pull_request", sample("github/pull_request.opened.1.json")),
    ("workflow_dispatch", {**sample("github/workflow_dispatch.1.json"), "inputs": {"pipeline": "digits"}}),
    ("repository_dispatch", sample("github/repository_dispatch.1.json")),
    ("ping", sample("github/ping.1.json")),
]
WANDB = [sample(f"wandb/{name}.json") for name in ("CREATE_ARTIFACT", "LINK_MODEL", "RUN_METRIC")]
WANDB.append(wandb_payload("CREATE_ARTIFACT", "acme/digits/digits-model:v1"))
PUBSUB: dict[str, list[dict[str, Any]]] = {
    "drift_alert": [
        sample("monitoring/incident.closed.json"),
        sample("monitoring/model_monitoring_logentry.json"),
        monitoring_incident(pipeline="digits", endpoint=None, state="open"),
    ],
    "schedule_tick": [schedule_data("digits", reason="nightly"), sample("scheduler/SchedulerJobData-simple.json")],
    "build_status": [sample("cloudbuild/build.SUCCESS.json"), cloud_build_message("r-1")[0]],
    "orchestrator": [
        {"type": "start_run", "run_id": "r-1"},
        retrain_data("relaunch-demo/digits", "main", "digits", "why", 5, "k-1"),
    ],
    "reconcile": [{}],
}

# -- what goes in the hole ---------------------------------------------------------------------------------------

LONE = st.integers(0xD800, 0xDFFF).map(chr)
TEXT = st.text(st.one_of(st.characters(), LONE), max_size=12)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), TEXT)
ANY_JSON = st.recursive(
    SCALAR, lambda kids: st.one_of(st.lists(kids, max_size=3), st.dictionaries(TEXT, kids, max_size=3))
)
HUGE = st.sampled_from(["1e999999", "-1e400", "9" * 10_000, "-" + "1" * 5000, "NaN", "Infinity", "-Infinity", "1e-400"])


def _nested(depth: int, opener: str) -> bytes:
    close = {"[": "]", '{"a":': "}"}[opener]
    return opener.encode() * depth + b"0" + close.encode() * depth


DEEP = st.builds(_nested, st.integers(10_000, 100_000), st.sampled_from(["[", '{"a":']))
HOSTILE = st.one_of(
    ANY_JSON.map(lambda v: json.dumps(v).encode()),
    HUGE.map(str.encode),
    DEEP,
    LONE.map(lambda c: json.dumps(c).encode()),
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place a value can go: each existing key and index, and a new key in each object."""
    yield prefix
    if isinstance(node, dict):
        yield (*prefix, "\ud800new" if len(prefix) % 2 else "extra")
        for key, child in node.items():
            yield from paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from paths(child, (*prefix, index))


def plant(document: dict[str, Any], path: tuple[Any, ...], hostile: bytes) -> bytes:
    """`document` as JSON bytes with `hostile` (raw JSON text) at `path`."""
    if not path:
        return hostile
    copy = json.loads(json.dumps(document))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = HOLE
    return json.dumps(copy).encode().replace(MARK, hostile, 1)


@st.composite
def planted(draw: st.DrawFn, documents: list[dict[str, Any]]) -> bytes:
    document = draw(st.sampled_from(documents))
    path = draw(st.sampled_from(list(paths(document))))
    return plant(document, path, draw(HOSTILE))


# -- the harness -------------------------------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[str], FlaskClient]]:
    bootstrap.use(bootstrap.App(relaunch_settings(tmp_path)))
    clients: dict[str, FlaskClient] = {}

    def client(function: str) -> FlaskClient:
        if function not in clients:
            clients[function] = functions_framework.create_app(function, SOURCE).test_client()
        caplog.clear()
        return clients[function]

    yield client
    bootstrap.use(None)


def never_fails(reply: Any, caplog: pytest.LogCaptureFixture) -> None:
    assert reply.status_code < 500, reply.get_data(as_text=True)[:300]
    errors = [r.getMessage()[:300] for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


@FUZZ
@given(data=st.data())
def test_github_webhook(served: Callable[[str], FlaskClient], caplog: pytest.LogCaptureFixture, data: Any) -> None:
    event, document = data.draw(st.sampled_from(GITHUB))
    body = data.draw(planted([document]))
    headers = github_headers(event, body, "s", f"fuzz-{next(_ids)}")
    never_fails(served("github_webhook").post("/", data=body, headers=headers), caplog)


@FUZZ
@given(body=planted(WANDB))
def test_wandb_webhook(served: Callable[[str], FlaskClient], caplog: pytest.LogCaptureFixture, body: bytes) -> None:
    never_fails(served("wandb_webhook").post("/", data=body, headers=wandb_headers(body)), caplog)


@FUZZ
@pytest.mark.parametrize("function", sorted(PUBSUB))
@given(data=st.data())
def test_pubsub_function(
    served: Callable[[str], FlaskClient], caplog: pytest.LogCaptureFixture, function: str, data: Any
) -> None:
    message_id = f"fuzz-{next(_ids)}"
    if data.draw(st.booleans(), label="in the message data"):
        raw = base64.b64encode(data.draw(planted(PUBSUB[function])))
        headers, body = pubsub_event(None, raw=raw, message_id=message_id)
    else:  # in the envelope itself, which functions-framework decodes before our code runs
        headers, valid = pubsub_event(PUBSUB[function][0], message_id=message_id)
        body = data.draw(planted([json.loads(valid)]))
    never_fails(served(function).post("/", data=body, headers=headers), caplog)
