"""The commands topic is configurable (RELAUNCH_PUBSUB_COMMANDS_TOPIC, which deploy wires to the orchestrator's
trigger): every publisher of commands uses it, never the default name."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from relaunch import bootstrap
from relaunch.domain.model import JobRequest, JobStatus
from relaunch.simulate import github_headers
from tests.fakes import FakeBus
from tests.integration.test_exactly_once import push_body
from tests.integration.test_functions import client, settings

TOPIC = "team-a-commands"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[bootstrap.App]:
    built = bootstrap.App(settings(tmp_path, pubsub_commands_topic=TOPIC), overrides={"bus": FakeBus()})
    bootstrap.use(built)
    yield built
    bootstrap.use(None)


def test_a_push_starts_its_run_on_the_configured_commands_topic(app: bootstrap.App) -> None:
    body = push_body()
    reply = client("github_webhook").post("/", data=body, headers=github_headers("push", body, "s", "t-1"))
    assert reply.status_code == 202
    bus = app.bus
    assert isinstance(bus, FakeBus)
    assert [(topic, data["type"]) for topic, data, _ in bus.messages] == [(TOPIC, "start_run")]


def test_a_finished_job_is_reported_on_the_configured_commands_topic(app: bootstrap.App) -> None:
    relay = bootstrap.job_finished_publisher(app.bus, app.settings)
    request = JobRequest(run_id="r-1", step="train", key="r-1:train", image="img", command=["python", "train.py"])
    relay(request, JobStatus(id="job-1", state="succeeded"))
    bus = app.bus
    assert isinstance(bus, FakeBus)
    assert [(topic, json.dumps(data["type"])) for topic, data, _ in bus.messages] == [(TOPIC, '"job_finished"')]
