"""Long-running Vertex operations never outlive a function: started, recorded, and finished on a later event or tick.

The orchestrator drives the real Vertex adapters against the fake REST API, whose deployments can be kept running
(`operation_polls_by_kind`) and then finished or failed (`finish_operations`).
"""

from __future__ import annotations

import threading
import time
from contextlib import suppress
from typing import Any

from relaunch.adapters.gcp.vertex_endpoint import VertexEndpoint
from relaunch.domain.commands import JobFinished
from relaunch.domain.model import PipelineRun, RunState
from relaunch.domain.ports import TransientError
from relaunch.domain.rollout import BlueGreenRollout
from relaunch.service.reconcile import ReconcileService
from tests.integration.vertex.conftest import PROJECT, REGION
from tests.integration.vertex.test_vertex_pipeline import SPEC, VertexWorld
from tests.vertex_server import FakeVertex

FUNCTION_LIMIT_S = 540.0  # the orchestrator function's timeout (deploy/plan_functions.py)


def deploys_of(vertex: FakeVertex, version_id: str) -> int:
    return sum(
        1 for r in vertex.calls("POST", ":deployModel") if r.body["deployedModel"]["model"].endswith(f"@{version_id}")
    )


def start_second(world: VertexWorld) -> PipelineRun:
    """Promote v1 (operations finish at once), then gate run 2 while its deployment keeps running on Vertex."""
    world.promote(1, 0.97)
    world.vertex.operation_polls_by_kind = {"DeployModel": -1}
    with suppress(TransientError):  # the adapter used to give up waiting with a TransientError (a redelivery)
        world.promote(2, 0.98, champion=0.97)
    return world.store.runs["digits-2"]


def redeliver_evaluation(world: VertexWorld, run_id: str) -> None:
    job = world.store.runs[run_id].jobs["evaluate"]
    with suppress(TransientError):
        world.orch.handle(JobFinished(run_id=run_id, step="evaluate", job_id=job, state="succeeded"))


def test_a_redelivered_command_while_the_deployment_runs_starts_one_deployment(
    vertex: FakeVertex, client_kwargs: dict[str, Any]
) -> None:
    world = VertexWorld(vertex, client_kwargs)
    world.endpoint.operation_timeout_s = 0.3  # how long one invocation may wait for an operation

    run = start_second(world)
    redeliver_evaluation(world, run.id)
    world.orch.advance(world.store.runs[run.id])

    assert deploys_of(vertex, "2") == 1
    run = world.store.runs[run.id]
    assert run.state is RunState.ROLLING_OUT and run.rollout is not None and run.rollout.phase == "pending"
    (running,) = [op["name"] for op in vertex.operations.values() if not op["done"]]
    assert world.store.get_effect(run.id, "endpoint-op:deploy:v2") == {"operation": running}

    vertex.finish_operations()
    report = ReconcileService.over(world.orch).run()  # the next tick polls the recorded operation and moves on

    assert report.errors == []
    assert world.store.runs[run.id].state is RunState.PROMOTED and deploys_of(vertex, "2") == 1
    assert world.endpoint.traffic("digits") == {"v2": 100}


def test_a_function_returns_long_before_the_deployment_ends(vertex: FakeVertex, client_kwargs: dict[str, Any]) -> None:
    # The default bound of a wait (what bootstrap gives the adapter) is well inside the function's limit; the
    # invocation below waits a short bound instead, so the test does not spend the default's seconds.
    assert VertexEndpoint(PROJECT, REGION, **client_kwargs).operation_timeout_s <= FUNCTION_LIMIT_S / 10
    world = VertexWorld(vertex, client_kwargs)
    world.endpoint.operation_timeout_s = 0.3
    world.promote(1, 0.97)
    vertex.operation_polls_by_kind = {"DeployModel": -1}

    began = time.monotonic()
    worker = threading.Thread(target=lambda: world.promote(2, 0.98, champion=0.97), daemon=True)
    worker.start()
    worker.join(60)

    assert not worker.is_alive(), "the invocation still waits for the deployment after 60 s"
    assert time.monotonic() - began < FUNCTION_LIMIT_S / 10
    assert world.store.runs["digits-2"].state is RunState.ROLLING_OUT


def test_a_deployment_that_fails_later_rolls_the_run_back_with_vertexs_reason(
    vertex: FakeVertex, client_kwargs: dict[str, Any]
) -> None:
    world = VertexWorld(vertex, client_kwargs)
    world.endpoint.operation_timeout_s = 0.3
    run = start_second(world)

    vertex.finish_operations({"code": 9, "message": "Model server never became ready."})
    ReconcileService.over(world.orch).run()

    ended = world.store.runs[run.id]
    assert ended.state in (RunState.ROLLED_BACK, RunState.FAILED)
    assert "never became ready" in (ended.reason or "")
    assert world.endpoint.traffic("digits") == {"v1": 100} and deploys_of(vertex, "2") == 1


def test_a_crash_between_starting_and_recording_finds_the_running_deployment(
    vertex: FakeVertex, client_kwargs: dict[str, Any]
) -> None:
    world = VertexWorld(vertex, client_kwargs)
    world.endpoint.operation_timeout_s = 0.3
    run = start_second(world)
    world.store.effects.pop((run.id, "endpoint-op:deploy:v2"), None)  # as if the process died before recording it

    world.orch.advance(world.store.runs[run.id])

    assert deploys_of(vertex, "2") == 1
    assert world.store.get_effect(run.id, "endpoint-op:deploy:v2") is not None


def test_blue_green_is_refused_on_vertex_before_anything_is_deployed(
    vertex: FakeVertex, client_kwargs: dict[str, Any]
) -> None:
    world = VertexWorld(vertex, client_kwargs)
    world.orch.d.specs = lambda: {"digits": SPEC.model_copy(update={"rollout": BlueGreenRollout(smoke=[[1, 2]])})}

    with suppress(TransientError):
        run = world.promote(1, 0.97)
    run = world.store.runs["digits-1"]

    assert run.state is RunState.FAILED
    assert "rollout.strategy" in (run.reason or "") and "blue-green" in (run.reason or "")
    assert vertex.calls("POST", ":deployModel") == [] and vertex.calls("POST", "models:upload") == []
