"""Vertex AI endpoints: a pipeline's endpoint name is the display name of a Vertex endpoint, created on first deploy.

Our version strings ("v3") map to the deployed models serving that model version; the traffic split is kept by
Vertex per deployed-model id. A deployment takes minutes, longer than a function may live (540 s, reconcile 300 s):
`deploy` and `undeploy` wait at most `operation_timeout_s` (seconds) and otherwise hand back the running operation's
name, which the caller records and passes back on its next call, where it is polled (operations.get), never started
again. A call that died before its caller recorded the name is covered too: an operation of the same kind still
running on the endpoint (operations.list) is resumed rather than a second one started. Creating the endpoint (seconds)
is awaited within the same bound; past it a TransientError makes the platform redeliver, and the retry finds it.

Predictions go through PredictionService (REST). A shared public Vertex endpoint always routes by its traffic split:
nothing in the v1 API sends one request to a chosen deployed model (googleapis/python-aiplatform#827; only
dedicated endpoints have an `invoke` route per deployed model), so `predict(version=...)` answers only when that
version takes all the traffic and refuses otherwise. Health comes from Cloud Monitoring's online-prediction metrics
of the deployed model (resource aiplatform.googleapis.com/Endpoint), which arrive a few minutes late.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from relaunch.adapters.gcp.vertex_common import (
    CALL_TIMEOUT_S,
    VertexService,
    call,
    make_client,
    poll,
    require,
    running_operation,
    wait,
    wait_briefly,
)
from relaunch.adapters.gcp.vertex_histograms import merge_buckets, percentile
from relaunch.domain.model import EndpointHealth, ModelVersion
from relaunch.domain.ports import TransientError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
METRIC_PREFIX = "aiplatform.googleapis.com/prediction/online/"
RESOURCE_TYPE = "aiplatform.googleapis.com/Endpoint"
MONITORING_HOST = "monitoring.googleapis.com"


class VertexEndpoint(VertexService):
    """An `Endpoint` on Vertex AI online prediction."""

    client_kind = "EndpointServiceClient"
    can_address_versions = False  # every request follows the traffic split (see the module's docstring)

    def __init__(
        self,
        project: str,
        region: str,
        *,
        machine_type: str = "n1-standard-2",
        api_endpoint: str | None = None,
        monitoring_endpoint: str | None = None,
        credentials: Any | None = None,
        operation_timeout_s: float = 10.0,
        poll_interval_s: float = 5.0,
        clock: Any = time.time,
    ) -> None:
        require("VertexEndpoint", project=project, region=region, machine_type=machine_type)
        if operation_timeout_s <= 0:
            raise ValueError(f"VertexEndpoint: operation_timeout_s must be positive, got {operation_timeout_s}")
        super().__init__(project, region, api_endpoint, credentials)
        self.machine_type = machine_type
        self.operation_timeout_s = operation_timeout_s
        self.poll_interval_s = poll_interval_s
        self._names: dict[str, str] = {}  # our endpoint name -> Vertex resource name
        self._monitoring_endpoint = monitoring_endpoint or MONITORING_HOST
        self._clock = clock
        self._predictions: Any | None = None
        self._monitoring: Any | None = None

    # -- Endpoint ---------------------------------------------------------------------------------------------

    def deploy(self, endpoint: str, model: ModelVersion, *, operation: str | None = None) -> str | None:
        """Deploy the version at 0% traffic (100% on an endpoint serving nothing); None once it is deployed, else the
        name of the deployment still running (pass it back as `operation` to poll it; ValueError if it failed)."""
        if not model.resource_name:
            raise ValueError(f"model.resource_name: {model.pipeline} {model.version} has no Vertex model name")
        what = f"deploy {model.version} to {endpoint}"
        current = self._get(self._ensure(endpoint))
        if operation is not None and not poll(self.client, operation, what):
            return operation
        model_id, _, version_id = model.resource_name.rpartition("/models/")[2].partition("@")
        for deployed in current.deployed_models:
            if _model_id(deployed.model) == model_id and deployed.model_version_id == version_id:
                return None
        started = running_operation(self.client, current.name, "DeployModel", what)
        if started is not None:
            return started
        request = {
            "endpoint": current.name,
            "deployed_model": {
                "model": model.resource_name,
                "display_name": f"{model.pipeline}-{model.version}",
                "dedicated_resources": {
                    "machine_spec": {"machine_type": self.machine_type},
                    "min_replica_count": 1,
                    "max_replica_count": 1,
                },
            },
            # "0" stands for the model being deployed; an empty split leaves the endpoint's split as it is.
            "traffic_split": {} if current.deployed_models else {"0": 100},
        }
        deploying = call(self.client, "deploy_model", request, what)
        return wait_briefly(deploying, what, self.operation_timeout_s, self.poll_interval_s)

    def set_traffic(self, endpoint: str, split: dict[str, int]) -> None:
        """Set percentages per deployed version (summing to 100; versions left out get 0)."""
        if any(share < 0 for share in split.values()) or sum(split.values()) != 100:
            raise ValueError(f"split: percentages must be non-negative and sum to 100, got {split}")
        current = self._get(self._existing(endpoint, "set traffic on"))
        ids = self._ids_by_version(current)
        missing = sorted(set(split) - set(ids))
        if missing:
            raise ValueError(f"split: {', '.join(missing)} not deployed to endpoint {endpoint}")
        endpoint_update = {
            "name": current.name,
            "traffic_split": {ids[v]: share for v, share in split.items() if share},
        }
        request = {"endpoint": endpoint_update, "update_mask": {"paths": ["traffic_split"]}}
        call(self.client, "update_endpoint", request, f"set traffic of {endpoint}")

    def undeploy(self, endpoint: str, version: str, *, operation: str | None = None) -> str | None:
        """Remove a version that takes no traffic (one not deployed is left alone); None once it is gone, else the
        name of the undeployment still running (pass it back as `operation` to poll it)."""
        name = self._lookup(endpoint)
        if name is None:
            return None
        what = f"undeploy {version} from {endpoint}"
        if operation is not None and not poll(self.client, operation, what):
            return operation
        current = self._get(name)
        deployed_id = self._ids_by_version(current).get(version)
        if deployed_id is None:
            return None
        share = current.traffic_split.get(deployed_id, 0)
        if share:
            raise ValueError(f"version {version} still takes {share}% of endpoint {endpoint}; move its traffic first")
        started = running_operation(self.client, name, "UndeployModel", what)
        if started is not None:
            return started
        request = {"endpoint": name, "deployed_model_id": deployed_id}
        undeploying = call(self.client, "undeploy_model", request, what)
        return wait_briefly(undeploying, what, self.operation_timeout_s, self.poll_interval_s)

    def traffic(self, endpoint: str) -> dict[str, int]:
        """{version: percent} over the deployed versions; {} for an endpoint that does not exist."""
        name = self._lookup(endpoint)
        if name is None:
            return {}
        current = self._get(name)
        return {v: int(current.traffic_split.get(i, 0)) for v, i in self._ids_by_version(current).items()}

    def predict(self, endpoint: str, instances: list[Any], *, version: str | None = None) -> dict[str, Any]:
        """Predictions with the deployed model and version that served them (`deployedModelId`, `model_version`).

        With `version`, only when that version takes 100% of the traffic: Vertex cannot send a request to a deployed
        model against the split, and forcing the split would send real traffic to an untested version."""
        if not isinstance(instances, list) or not instances:
            raise ValueError("instances: must be a non-empty list")
        current = self._get(self._existing(endpoint, "predict with"))
        ids = self._ids_by_version(current)
        if version is not None:
            if version not in ids:
                raise ValueError(f"version: {version} is not deployed to endpoint {endpoint}")
            share = int(current.traffic_split.get(ids[version], 0))
            if share != 100:
                raise ValueError(
                    f"version: {version} takes {share}% of endpoint {endpoint}; Vertex AI routes every request by"
                    " the traffic split, so only a version taking 100% can be addressed"
                )
        from google.cloud import aiplatform_v1
        from google.protobuf import json_format, struct_pb2

        # proto-plus does not marshal a list of JSON values into the repeated Value field at construction: extend it.
        request = aiplatform_v1.PredictRequest(endpoint=current.name)
        request.instances.extend(json_format.ParseDict(instance, struct_pb2.Value()) for instance in instances)
        response = call(self._prediction_client(), "predict", request, f"predict on {endpoint}")
        served = str(response.deployed_model_id)
        if version is not None and served != ids[version]:  # the split changed under us
            raise TransientError(f"predict on {endpoint}: served by deployed model {served}, not {version}")
        answer = json_format.MessageToDict(type(response).pb(response))
        by_id = {deployed_id: v for v, deployed_id in ids.items()}
        return {
            "predictions": list(answer.get("predictions", [])),
            "deployedModelId": served,
            "model_version": by_id.get(served, f"v{response.model_version_id}" if response.model_version_id else None),
        }

    def health(self, endpoint: str, version: str, since: float) -> EndpointHealth:
        """What Cloud Monitoring recorded for the version's deployed model over [since, now]: responses (all codes),
        errors, and p50/p95 of the total latency. Points arrive minutes late: a short window reads as no traffic."""
        current = self._get(self._existing(endpoint, "read health of"))
        deployed_id = self._ids_by_version(current).get(version)
        if deployed_id is None:
            raise ValueError(f"version: {version} is not deployed to endpoint {endpoint}")
        end = float(self._clock())
        start = min(float(since), end)
        endpoint_id = str(current.name).rpartition("/")[2]
        where = (
            f'resource.type="{RESOURCE_TYPE}" AND resource.labels.endpoint_id="{endpoint_id}"'
            f' AND metric.labels.deployed_model_id="{deployed_id}"'
        )
        responses = self._series("response_count", where, start, end, endpoint)
        errors = self._series("error_count", where, start, end, endpoint)
        latencies = self._series(
            "prediction_latencies", f'{where} AND metric.labels.latency_type="total"', start, end, endpoint
        )
        requests = sum(_int_points(responses))
        failed = min(sum(_int_points(errors)), requests) if requests else 0
        buckets = merge_buckets(
            p["value"]["distributionValue"] for s in latencies for p in s.get("points", []) if "value" in p
        )
        return EndpointHealth(
            version=version,
            requests=requests,
            errors=failed,
            error_rate=failed / requests if requests else 0.0,
            p50_ms=percentile(buckets, 0.50),
            p95_ms=percentile(buckets, 0.95),
            window_s=end - start,
        )

    # -- clients and Cloud Monitoring -------------------------------------------------------------------------

    def _prediction_client(self) -> Any:
        if self._predictions is None:
            self._predictions = make_client(
                "PredictionServiceClient", self.region, self._api_endpoint, self._credentials
            )
        return self._predictions

    def _monitoring_session(self) -> Any:
        """An authorized HTTP session for Cloud Monitoring's REST API: google-cloud-monitoring's MetricServiceClient
        has only gRPC transports (no `rest`), so timeSeries.list is called as documented JSON over HTTP."""
        if self._monitoring is None:
            import google.auth
            from google.auth.transport.requests import AuthorizedSession

            credentials = self._credentials
            if credentials is None:
                credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/monitoring.read"])
            self._monitoring = AuthorizedSession(credentials)
        return self._monitoring

    def _series(self, metric: str, where: str, start: float, end: float, endpoint: str) -> list[dict[str, Any]]:
        """Every time series (all pages) of one online-prediction metric matching `where` over [start, end]."""
        import requests

        host = self._monitoring_endpoint
        url = f"{host if '://' in host else 'https://' + host}/v3/projects/{self.project}/timeSeries"
        params = {
            "filter": f'metric.type="{METRIC_PREFIX}{metric}" AND {where}',
            "interval.startTime": _rfc3339(start),
            "interval.endTime": _rfc3339(end),
            "view": "FULL",
        }
        what = f"Cloud Monitoring: read {metric} of {endpoint}"
        found: list[dict[str, Any]] = []
        while True:
            try:
                response = self._monitoring_session().get(url, params=params, timeout=CALL_TIMEOUT_S)
            except (requests.RequestException, OSError) as exc:
                raise TransientError(f"{what}: {exc}") from exc
            if response.status_code == 429 or response.status_code >= 500:
                raise TransientError(f"{what}: {response.status_code} {_message(response)}")
            if response.status_code >= 400:
                raise ValueError(f"{what} refused: {response.status_code} {_message(response)}")
            page = response.json()
            found.extend(page.get("timeSeries", []))
            token = page.get("nextPageToken")
            if not token:
                return found
            params["pageToken"] = token

    # -- finding the endpoint ---------------------------------------------------------------------------------

    def _ensure(self, endpoint: str) -> str:
        """The endpoint's resource name, creating the endpoint (and awaiting it) when missing."""
        name = self._lookup(endpoint)
        if name is not None:
            return name
        request = {"parent": self.parent, "endpoint": {"display_name": endpoint, "labels": {"relaunch": "true"}}}
        what = f"create endpoint {endpoint}"
        created = wait(
            call(self.client, "create_endpoint", request, what), what, self.operation_timeout_s, self.poll_interval_s
        )
        self._names[endpoint] = created.name
        return str(created.name)

    def _existing(self, endpoint: str, doing: str) -> str:
        name = self._lookup(endpoint)
        if name is None:
            raise ValueError(f"cannot {doing} endpoint {endpoint}: it does not exist (deploy a version first)")
        return name

    def _lookup(self, endpoint: str) -> str | None:
        if not _NAME.match(endpoint):
            raise ValueError(f"endpoint: invalid endpoint name {endpoint!r}")
        if endpoint in self._names:
            return self._names[endpoint]
        request = {"parent": self.parent, "filter": f'display_name="{endpoint}"', "page_size": 10}
        pager = call(self.client, "list_endpoints", request, f"find endpoint {endpoint}")
        found = [e for e in pager.endpoints if e.display_name == endpoint]
        if not found:
            return None
        # Two endpoints of one name can only come from a creation race: always pick the same (the oldest).
        oldest = min(found, key=lambda e: (e.create_time.timestamp() if e.create_time else 0.0, e.name))
        self._names[endpoint] = oldest.name
        return str(oldest.name)

    def _get(self, name: str) -> Any:
        return call(self.client, "get_endpoint", {"name": name}, f"get {name}")

    @staticmethod
    def _ids_by_version(current: Any) -> dict[str, str]:
        """Our version string -> deployed-model id."""
        ids: dict[str, str] = {}
        for deployed in current.deployed_models:
            version = f"v{deployed.model_version_id}"
            if version in ids:
                raise ValueError(f"endpoint {current.display_name} serves {version} of two models; ambiguous")
            ids[version] = deployed.id
        return ids


def _model_id(resource_name: str) -> str:
    """The model id of `projects/P/locations/L/models/M[@V]` (P may be the project's id or its number)."""
    return resource_name.rpartition("/models/")[2].partition("@")[0]


def _rfc3339(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _message(response: Any) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return str(response.text)[:500]


def _int_points(series: Iterable[dict[str, Any]]) -> Iterable[int]:
    """The values of DELTA INT64 points (each counts the events of its own interval; int64 is a JSON string)."""
    for one in series:
        for point in one.get("points", []):
            yield int(point.get("value", {}).get("int64Value", 0))
