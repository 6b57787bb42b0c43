"""Vertex AI CustomJob service log entries (the relaunch-vertex-jobs sink) and the runs they wake."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relaunch.domain.commands import JobNoticed
from relaunch.domain.model import PipelineRun, RunState, Trigger
from relaunch.emulated import discovery_schema as discovery
from relaunch.service.ingest_events import plan_job_log
from relaunch.triggers.errors import TriggerError
from relaunch.triggers.pubsub import PubSubMessage
from relaunch.triggers.vertex_jobs import SINK_FILTER, JobLogEvent, names_job, parse_job_log

SAMPLE = Path(__file__).parent.parent / "samples" / "vertex" / "customjob_service_logentry.json"
JOB_ID = "5386271923948961792"
JOB = f"projects/123456789/locations/us-central1/customJobs/{JOB_ID}"


def entry(**labels: Any) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(json.loads(SAMPLE.read_text()))
    for key, value in labels.items():
        if value is None:
            data["resource"]["labels"].pop(key, None)
        else:
            data["resource"]["labels"][key] = value
    return data


def message(data: dict[str, Any] | bytes) -> PubSubMessage:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return PubSubMessage("m-1", raw, attributes={}, publish_time=None, subscription=None, ordering_key=None)


def test_the_sample_is_a_log_entry_as_cloud_logging_describes_it() -> None:
    """The sample is not vendor-published: it must at least be what the Logging API's own schema allows."""
    assert discovery.problems(discovery.document("logging.v2.LogEntry"), "LogEntry", entry()) == []
    assert discovery.problems(discovery.document("logging.v2.LogEntry"), "LogEntry", {**entry(), "state": "x"}) == [
        "LogEntry.state: not a field of LogEntry"
    ]


def test_a_service_entry_names_its_job() -> None:
    assert parse_job_log(message(entry())) == JobLogEvent(job_id=JOB_ID, project="my-ml-project", task="service")


def test_a_full_resource_name_is_reduced_to_the_id() -> None:
    assert parse_job_log(message(entry(job_id=JOB))).job_id == JOB_ID


def test_the_message_text_decides_nothing() -> None:
    """A reworded (or forged) message changes nothing: the event carries no state to trust."""
    data = entry()
    data["jsonPayload"]["message"] = "Job failed. (or so says whoever published this)"
    assert parse_job_log(message(data)) == parse_job_log(message(entry()))


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({**entry(), "resource": {"type": "gce_instance", "labels": {"job_id": JOB_ID}}}, "resource.type"),
        ({k: v for k, v in entry().items() if k != "resource"}, "resource.type"),
        (entry(job_id=None), "resource.labels.job_id"),
        (entry(job_id="../../customJobs/1"), "resource.labels.job_id"),
        (entry(job_id="12 OR 1=1"), "resource.labels.job_id"),
        (entry(job_id="projects/p/locations/l/customJobs/abc"), "resource.labels.job_id"),
        (entry(job_id=7), "resource.labels.job_id"),
        (entry(project_id="Evil Project\n"), "resource.labels.project_id"),
        ({**entry(), "resource": "ml_job"}, "resource"),
    ],
)
def test_anything_but_a_job_entry_is_refused_naming_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(TriggerError) as refused:
        parse_job_log(message(data))
    assert refused.value.field == field


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1]", b"\xff\xfe", b'{"resource": {"type": "\\ud800"}}'])
def test_bytes_that_are_not_a_json_object_are_refused(raw: bytes) -> None:
    with pytest.raises(TriggerError):
        parse_job_log(message(raw))


@given(st.text(max_size=80))
def test_any_job_id_is_an_event_or_a_named_refusal(job_id: str) -> None:
    try:
        event = parse_job_log(message(entry(job_id=job_id)))
    except TriggerError as exc:
        assert exc.field == "resource.labels.job_id"
    else:
        assert (
            event.job_id.isascii()
            and event.job_id.isdigit()
            and names_job(f"projects/p/locations/l/customJobs/{event.job_id}", event.job_id)
        )


def test_the_sink_filter_selects_vertex_lifecycle_entries_only() -> None:
    assert SINK_FILTER == 'resource.type="ml_job" AND resource.labels.task_name="service"'


def run(run_id: str, state: RunState, **jobs: str) -> PipelineRun:
    trigger = Trigger(kind="push", delivery_key=f"k-{run_id}")
    return PipelineRun(id=run_id, pipeline="digits", state=state, trigger=trigger, created_at=1.0, updated_at=1.0,
                       jobs=jobs)  # fmt: skip


def test_the_run_waiting_on_the_job_is_nudged_and_no_other() -> None:
    event = JobLogEvent(job_id=JOB_ID, project="my-ml-project", task="service")
    waiting = run("r-1", RunState.TRAINING, train=JOB)
    other = run("r-2", RunState.TRAINING, train=JOB.replace(JOB_ID, "1" + JOB_ID[1:]))
    plan = plan_job_log(event, [other, waiting])
    assert plan.commands == [JobNoticed(run_id="r-1", job_id=JOB_ID)]
    assert plan.body["outcome"] == "accepted" and plan.body["runs"] == ["r-1"]


def test_an_evaluation_job_wakes_its_run_too() -> None:
    event = JobLogEvent(job_id=JOB_ID, project=None, task="service")
    evaluating = run("r-1", RunState.EVALUATING, train=JOB.replace(JOB_ID, "42"), evaluate=JOB)
    assert plan_job_log(event, [evaluating]).commands == [JobNoticed(run_id="r-1", job_id=JOB_ID)]


def test_a_job_no_active_run_waits_on_is_acknowledged_and_starts_nothing() -> None:
    event = JobLogEvent(job_id=JOB_ID, project=None, task="service")
    plan = plan_job_log(event, [run("r-1", RunState.TRAINING, train="local-job-1")])
    assert plan.commands == [] and plan.status == 200 and plan.body["outcome"] == "ignored"
