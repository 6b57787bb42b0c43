"""VertexEndpoint against the fake Vertex REST API: the real EndpointServiceClient (REST transport) on loopback."""

from __future__ import annotations

from typing import Any

import pytest

from relaunch.adapters.gcp.vertex_endpoint import VertexEndpoint
from relaunch.adapters.gcp.vertex_registry import VertexRegistry
from relaunch.domain.model import ModelVersion
from relaunch.domain.ports import TransientError
from tests.integration.vertex.conftest import PARENT_PATH, PROJECT, REGION, bodies, query
from tests.vertex_server import FakeVertex

ENDPOINTS = f"{PARENT_PATH}/endpoints"


@pytest.fixture
def versions(client_kwargs: dict[str, Any]) -> list[ModelVersion]:
    """v1 and v2 of the digits model, registered through the real registry adapter."""
    registry = VertexRegistry(PROJECT, REGION, serving_image="serving:1", poll_interval_s=0.01, **client_kwargs)
    return [
        registry.register("digits", run, f"gs://relaunch-artifacts/root/runs/{run}/model", {"accuracy": acc})
        for run, acc in (("digits-aaaa", 0.97), ("digits-bbbb", 0.98))
    ]


@pytest.fixture
def endpoint(client_kwargs: dict[str, Any]) -> VertexEndpoint:
    return VertexEndpoint(PROJECT, REGION, machine_type="n1-standard-4", poll_interval_s=0.01, **client_kwargs)


def deployed_ids(vertex: FakeVertex) -> dict[str, str]:
    (state,) = vertex.endpoints.values()
    return {f"v{d['modelVersionId']}": d["id"] for d in state["deployedModels"]}


def test_first_deploy_creates_the_endpoint_and_serves_the_version(
    vertex: FakeVertex, endpoint: VertexEndpoint, versions: list[ModelVersion]
) -> None:
    endpoint.deploy("digits", versions[0])

    assert query(vertex, "GET", ENDPOINTS)[0] == {"filter": ['display_name="digits"'], "pageSize": ["10"]}
    assert bodies(vertex, "POST", ENDPOINTS) == [{"displayName": "digits", "labels": {"relaunch": "true"}}]
    name = f"projects/{vertex.project_number}/locations/{REGION}/endpoints/1003"
    assert [r.path for r in vertex.calls("GET", "/endpoints/1003/operations/1004")] == [
        f"/ui/{name}/operations/1004"
    ] * 2
    assert bodies(vertex, "POST", f"/v1/{name}:deployModel") == [
        {
            "deployedModel": {
                "model": f"projects/{vertex.project_number}/locations/{REGION}/models/relaunch-digits@1",
                "displayName": "digits-v1",
                "dedicatedResources": {
                    "machineSpec": {"machineType": "n1-standard-4"},
                    "minReplicaCount": 1,
                    "maxReplicaCount": 1,
                },
            },
            "trafficSplit": {"0": 100},  # an endpoint serving nothing gives its first version all traffic
        }
    ]
    assert len(vertex.calls("GET", "/endpoints/1003/operations/1006")) == 2  # the deployment awaited
    assert endpoint.traffic("digits") == {"v1": 100}


def test_deploy_is_idempotent_and_later_versions_start_at_zero(
    vertex: FakeVertex, endpoint: VertexEndpoint, versions: list[ModelVersion], client_kwargs: dict[str, Any]
) -> None:
    endpoint.deploy("digits", versions[0])
    endpoint.deploy("digits", versions[0])
    VertexEndpoint(PROJECT, REGION, poll_interval_s=0.01, **client_kwargs).deploy("digits", versions[0])
    endpoint.deploy("digits", versions[1])

    deploys = [r.body for r in vertex.calls("POST", ":deployModel")]
    assert len(deploys) == 2
    assert "trafficSplit" not in deploys[1]  # no split: the endpoint's split stays, the new version gets 0%
    assert len(bodies(vertex, "POST", ENDPOINTS)) == 1
    assert endpoint.traffic("digits") == {"v1": 100, "v2": 0}


def test_set_traffic_then_undeploy_the_old_version(
    vertex: FakeVertex, endpoint: VertexEndpoint, versions: list[ModelVersion]
) -> None:
    endpoint.deploy("digits", versions[0])
    endpoint.deploy("digits", versions[1])
    ids = deployed_ids(vertex)
    name = f"/v1/projects/{vertex.project_number}/locations/{REGION}/endpoints/1003"

    endpoint.set_traffic("digits", {"v1": 10, "v2": 90})
    endpoint.set_traffic("digits", {"v2": 100})
    endpoint.undeploy("digits", "v1")

    patches = vertex.calls("PATCH", name)
    assert [p.body for p in patches] == [
        {"trafficSplit": {ids["v1"]: 10, ids["v2"]: 90}},
        {"trafficSplit": {ids["v2"]: 100}},
    ]
    assert {k: v for k, v in patches[0].query.items() if k != "$alt"} == {"updateMask": ["trafficSplit"]}
    assert bodies(vertex, "POST", f"{name}:undeployModel") == [{"deployedModelId": ids["v1"]}]
    assert endpoint.traffic("digits") == {"v2": 100}
    endpoint.undeploy("digits", "v1")  # gone already: nothing sent
    assert len(bodies(vertex, "POST", f"{name}:undeployModel")) == 1


def test_bad_splits_and_serving_versions_are_refused(
    vertex: FakeVertex, endpoint: VertexEndpoint, versions: list[ModelVersion]
) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        endpoint.set_traffic("digits", {"v1": 100})
    endpoint.deploy("digits", versions[0])
    with pytest.raises(ValueError, match="sum to 100"):
        endpoint.set_traffic("digits", {"v1": 90})
    with pytest.raises(ValueError, match="v2 not deployed"):
        endpoint.set_traffic("digits", {"v1": 50, "v2": 50})
    with pytest.raises(ValueError, match="still takes 100%"):
        endpoint.undeploy("digits", "v1")
    assert vertex.calls("PATCH") == [] and vertex.calls("POST", ":undeployModel") == []
    with pytest.raises(ValueError, match="endpoint: invalid"):
        endpoint.traffic("digits/../x")
    with pytest.raises(ValueError, match="resource_name"):
        endpoint.deploy("digits", versions[1].model_copy(update={"resource_name": None}))


def test_traffic_of_a_missing_endpoint_is_empty_and_creates_nothing(
    vertex: FakeVertex, endpoint: VertexEndpoint
) -> None:
    assert endpoint.traffic("digits") == {}
    endpoint.undeploy("digits", "v1")
    assert vertex.calls("POST") == []


def test_a_deployment_still_running_at_the_bound_hands_back_its_operation_to_poll(
    vertex: FakeVertex, versions: list[ModelVersion], client_kwargs: dict[str, Any]
) -> None:
    slow = VertexEndpoint(PROJECT, REGION, operation_timeout_s=0.3, poll_interval_s=0.05, **client_kwargs)
    assert slow.deploy("digits", versions[0]) is None  # done within the bound
    vertex.operation_polls = -1  # from now on, operations never finish

    running = slow.deploy("digits", versions[1])
    assert running is not None and vertex.operations[running.split("/", 4)[4]]["done"] is False
    assert slow.deploy("digits", versions[1], operation=running) == running  # polled, nothing started
    assert slow.deploy("digits", versions[1]) == running  # name lost: the running deployment is found, not redone
    assert len(vertex.calls("POST", ":deployModel")) == 2
    listed = query(vertex, "GET", f"/ui/{running.rsplit('/', 1)[0]}")  # operations.list on the endpoint
    assert listed and all("filter" not in q for q in listed)

    vertex.finish_operations()
    assert slow.deploy("digits", versions[1], operation=running) is None
    assert slow.traffic("digits") == {"v1": 100, "v2": 0}


def test_an_undeployment_still_running_is_polled_not_repeated(
    vertex: FakeVertex, versions: list[ModelVersion], client_kwargs: dict[str, Any]
) -> None:
    slow = VertexEndpoint(PROJECT, REGION, operation_timeout_s=0.2, poll_interval_s=0.05, **client_kwargs)
    slow.deploy("digits", versions[0])
    slow.deploy("digits", versions[1])
    slow.set_traffic("digits", {"v2": 100})
    vertex.operation_polls = -1

    running = slow.undeploy("digits", "v1")
    assert running is not None and slow.undeploy("digits", "v1") == running
    vertex.finish_operations()
    assert slow.undeploy("digits", "v1", operation=running) is None
    assert len(vertex.calls("POST", ":undeployModel")) == 1 and slow.traffic("digits") == {"v2": 100}


def test_a_recorded_deployment_that_failed_is_refused_with_vertexs_reason(
    vertex: FakeVertex, versions: list[ModelVersion], client_kwargs: dict[str, Any]
) -> None:
    slow = VertexEndpoint(PROJECT, REGION, operation_timeout_s=0.2, poll_interval_s=0.05, **client_kwargs)
    slow.deploy("digits", versions[0])
    vertex.operation_polls = -1
    running = slow.deploy("digits", versions[1])
    assert running is not None
    vertex.finish_operations({"code": 9, "message": "Model server never became ready."})

    with pytest.raises(ValueError, match="deploy v2 to digits failed: 9 Model server never became ready"):
        slow.deploy("digits", versions[1], operation=running)


@pytest.mark.parametrize(("code", "error"), [(503, TransientError), (429, TransientError), (400, ValueError)])
def test_deploy_errors_map_to_the_ports_errors(
    vertex: FakeVertex, endpoint: VertexEndpoint, versions: list[ModelVersion], code: int, error: type[Exception]
) -> None:
    endpoint.deploy("digits", versions[0])
    vertex.fail_next("POST", ":deployModel", code, "Machine type n1-standard-4 is temporarily out of stock.")
    with pytest.raises(error, match="out of stock") as caught:
        endpoint.deploy("digits", versions[1])
    assert isinstance(caught.value, TransientError) == (error is TransientError)


def test_a_deployment_that_fails_in_its_operation_is_refused(
    vertex: FakeVertex, endpoint: VertexEndpoint, versions: list[ModelVersion]
) -> None:
    endpoint.deploy("digits", versions[0])
    vertex.fail_operations_with = {"code": 9, "message": "Model server never became ready."}
    with pytest.raises(ValueError, match="never became ready") as caught:
        endpoint.deploy("digits", versions[1])
    assert not isinstance(caught.value, TransientError)


# -- predict and health ---------------------------------------------------------------------------------------

SINCE, NOW = 1_700_000_000.0, 1_700_000_600.0  # 22:13:20Z .. 22:23:20Z on 2023-11-14


@pytest.fixture
def watched(client_kwargs: dict[str, Any], vertex: FakeVertex) -> VertexEndpoint:
    """An endpoint adapter reading Cloud Monitoring from the fake at a fixed clock."""
    return VertexEndpoint(
        PROJECT, REGION, poll_interval_s=0.01, monitoring_endpoint=vertex.url, clock=lambda: NOW, **client_kwargs
    )


def test_predict_goes_through_the_prediction_service_and_names_the_serving_version(
    vertex: FakeVertex, watched: VertexEndpoint, versions: list[ModelVersion]
) -> None:
    watched.deploy("digits", versions[0])
    watched.deploy("digits", versions[1])
    ids = deployed_ids(vertex)
    name = f"/v1/projects/{vertex.project_number}/locations/{REGION}/endpoints/1003"

    answer = watched.predict("digits", [[1.0, 2.0], [3.0]])
    assert answer == {"predictions": [2, 1], "deployedModelId": ids["v1"], "model_version": "v1"}
    assert watched.predict("digits", [[5.0]], version="v1")["model_version"] == "v1"  # v1 takes 100%
    assert bodies(vertex, "POST", f"{name}:predict") == [{"instances": [[1.0, 2.0], [3.0]]}, {"instances": [[5.0]]}]

    with pytest.raises(ValueError, match="v2 takes 0% .* only a version taking 100% can be addressed"):
        watched.predict("digits", [[5.0]], version="v2")
    with pytest.raises(ValueError, match="version: v9 is not deployed"):
        watched.predict("digits", [[5.0]], version="v9")
    with pytest.raises(ValueError, match="instances: must be a non-empty list"):
        watched.predict("digits", [])
    assert len(bodies(vertex, "POST", f"{name}:predict")) == 2  # refusals send nothing

    watched.set_traffic("digits", {"v2": 100})
    assert watched.predict("digits", [[5.0]], version="v2")["deployedModelId"] == ids["v2"]


@pytest.mark.parametrize(("code", "error"), [(503, TransientError), (400, ValueError)])
def test_predict_errors_map_to_the_ports_errors(
    vertex: FakeVertex, watched: VertexEndpoint, versions: list[ModelVersion], code: int, error: type[Exception]
) -> None:
    watched.deploy("digits", versions[0])
    vertex.predict_error = (code, "model server crashed")
    with pytest.raises(error, match="predict on digits.*model server crashed") as caught:
        watched.predict("digits", [[1.0]], version="v1")
    assert isinstance(caught.value, TransientError) == (error is TransientError)


def _counts(metric: str, endpoint_id: str, deployed_id: str, values: list[tuple[str, int]], **labels: str) -> dict:
    return {
        "metric": {
            "type": f"aiplatform.googleapis.com/prediction/online/{metric}",
            "labels": {"deployed_model_id": deployed_id, **labels},
        },
        "resource": {"type": "aiplatform.googleapis.com/Endpoint", "labels": {"endpoint_id": endpoint_id}},
        "metricKind": "DELTA",
        "valueType": "INT64",
        "points": [{"interval": {"endTime": at}, "value": {"int64Value": str(n)}} for at, n in values],
    }


def _latencies(endpoint_id: str, deployed_id: str, counts: list[tuple[str, list[int]]], kind: str = "total") -> dict:
    series = _counts("prediction_latencies", endpoint_id, deployed_id, [], latency_type=kind)
    series["valueType"] = "DISTRIBUTION"
    series["points"] = [
        {
            "interval": {"endTime": at},
            "value": {
                "distributionValue": {
                    "count": str(sum(c)),
                    "mean": 15.0,
                    "bucketOptions": {"explicitBuckets": {"bounds": [10, 20, 40, 80]}},
                    "bucketCounts": [str(n) for n in c],
                }
            },
        }
        for at, c in counts
    ]
    return series


def test_health_reads_the_deployed_models_metrics_since_the_given_time(
    vertex: FakeVertex, watched: VertexEndpoint, versions: list[ModelVersion]
) -> None:
    watched.deploy("digits", versions[0])
    watched.deploy("digits", versions[1])
    ids = deployed_ids(vertex)
    early, mid, late = "2023-11-14T22:10:00Z", "2023-11-14T22:15:00Z", "2023-11-14T22:20:00Z"
    v2 = ids["v2"]
    vertex.time_series = [
        _counts("response_count", "1003", v2, [(early, 50), (mid, 7), (late, 3)], response_code="2xx"),
        _counts("response_count", "1003", v2, [(late, 2)], response_code="5xx"),
        _counts("error_count", "1003", v2, [(early, 9), (late, 2)]),
        _latencies("1003", v2, [(mid, [0, 4, 2, 0, 0]), (late, [0, 2, 1, 1, 0])]),
        _latencies("1003", v2, [(mid, [0, 0, 0, 0, 99])], kind="model"),  # not the total latency: ignored
        _counts("response_count", "1003", ids["v1"], [(mid, 1000)], response_code="2xx"),  # another version
        _counts("response_count", "9999", v2, [(mid, 1000)], response_code="2xx"),  # another endpoint
    ]
    vertex.series_page_size = 1  # every series on its own page: the pager must follow nextPageToken

    health = watched.health("digits", "v2", SINCE)

    assert health.model_dump() == {
        "version": "v2",
        "requests": 12,
        "errors": 2,
        "error_rate": pytest.approx(2 / 12),
        "p50_ms": pytest.approx(10 + 10 * 5 / 6),  # rank 5 of 10 in [10, 20) holding 6
        "p95_ms": pytest.approx(60.0),  # rank 9.5 halfway through [40, 80) holding 1
        "window_s": 600.0,
    }
    path = "/v3/projects/p/timeSeries"
    where = 'resource.type="aiplatform.googleapis.com/Endpoint" AND resource.labels.endpoint_id="1003"'
    where += f' AND metric.labels.deployed_model_id="{v2}"'
    metric = 'metric.type="aiplatform.googleapis.com/prediction/online/'
    sent = [q for q in query(vertex, "GET", path) if "pageToken" not in q]
    assert sent == [
        {
            "filter": [f'{metric}{name}" AND {where}{extra}'],
            "interval.startTime": ["2023-11-14T22:13:20.000000Z"],
            "interval.endTime": ["2023-11-14T22:23:20.000000Z"],
            "view": ["FULL"],
        }
        for name, extra in (
            ("response_count", ""),
            ("error_count", ""),
            ("prediction_latencies", ' AND metric.labels.latency_type="total"'),
        )
    ]
    assert [q["pageToken"] for q in query(vertex, "GET", path) if "pageToken" in q] == [["1"]]


def test_health_of_a_quiet_version_has_no_latency_and_unknown_versions_are_refused(
    vertex: FakeVertex, watched: VertexEndpoint, versions: list[ModelVersion]
) -> None:
    watched.deploy("digits", versions[0])
    assert watched.health("digits", "v1", SINCE).model_dump() == {
        "version": "v1", "requests": 0, "errors": 0, "error_rate": 0.0, "p50_ms": None, "p95_ms": None,
        "window_s": 600.0,
    }  # fmt: skip
    with pytest.raises(ValueError, match="version: v2 is not deployed"):
        watched.health("digits", "v2", SINCE)
    vertex.fail_next("GET", "/timeSeries", 503, "Monitoring is unavailable")
    with pytest.raises(TransientError, match="read response_count of digits.*Monitoring is unavailable"):
        watched.health("digits", "v1", SINCE)
