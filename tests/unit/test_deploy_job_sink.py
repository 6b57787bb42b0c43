"""Deploy wires the Vertex AI job events: the log sink, its publish right, the topic and the vertex_job function."""

from __future__ import annotations

from pathlib import Path

from relaunch.config_files import load_specs
from relaunch.deploy import load_infra
from relaunch.deploy.command import render
from relaunch.deploy.plan import build_plan
from relaunch.triggers.vertex_jobs import SINK_FILTER

ROOT = Path(__file__).resolve().parents[2]
SPECS = load_specs(ROOT / "pipelines")


def test_the_example_deploy_routes_vertex_job_entries_to_the_vertex_job_function() -> None:
    infra = load_infra(ROOT / "triggers" / "relaunch.yaml", SPECS)
    plan = build_plan(infra, SPECS)
    steps = {s.id: s for s in plan.steps}
    sink = steps["log sink relaunch-vertex-jobs"]
    assert sink.create is not None
    created = render(sink.create)
    assert "logging sinks create relaunch-vertex-jobs" in created
    assert "pubsub.googleapis.com/projects/my-ml-project/topics/relaunch-vertex-jobs" in created
    assert SINK_FILTER.replace('"', "") in created.replace('"', "").replace("'", "")
    publish = [s for s in plan.steps if s.section == "job log sink" and "roles/pubsub.publisher" in s.id]
    assert len(publish) == 1 and "relaunch-vertex-jobs" in publish[0].id
    deployed = render(steps["function relaunch-vertex-job"].create)  # type: ignore[arg-type]
    assert "--entry-point=vertex_job" in deployed and "--trigger-topic=relaunch-vertex-jobs" in deployed
    assert "topic relaunch-vertex-jobs" in steps


def test_job_sink_null_deploys_no_sink() -> None:
    infra = load_infra(ROOT / "triggers" / "relaunch.yaml", SPECS).model_copy(update={"job_sink": None})
    assert not [s for s in build_plan(infra, SPECS).steps if s.section == "job log sink"]
