"""Vertex AI endpoints: a pipeline's endpoint name is the display name of a Vertex endpoint, created on first deploy.

Our version strings ("v3") map to the deployed models serving that model version; the traffic split is kept by
Vertex per deployed-model id. Long-running operations (create, deploy, undeploy) are awaited with a timeout, after
which a TransientError makes the platform redeliver the command (the retry finds the finished deployment).
"""

from __future__ import annotations

import re
from typing import Any

from relaunch.adapters.gcp.vertex_common import VertexService, call, require, wait
from relaunch.pipelines.model import ModelVersion

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class VertexEndpoint(VertexService):
    """An `Endpoint` on Vertex AI online prediction."""

    client_kind = "EndpointServiceClient"

    def __init__(
        self,
        project: str,
        region: str,
        *,
        machine_type: str = "n1-standard-2",
        api_endpoint: str | None = None,
        credentials: Any | None = None,
        operation_timeout_s: float = 1800.0,
        poll_interval_s: float = 5.0,
    ) -> None:
        require("VertexEndpoint", project=project, region=region, machine_type=machine_type)
        if operation_timeout_s <= 0:
            raise ValueError(f"VertexEndpoint: operation_timeout_s must be positive, got {operation_timeout_s}")
        super().__init__(project, region, api_endpoint, credentials)
        self.machine_type = machine_type
        self.operation_timeout_s = operation_timeout_s
        self.poll_interval_s = poll_interval_s
        self._names: dict[str, str] = {}  # our endpoint name -> Vertex resource name

    # -- Endpoint ---------------------------------------------------------------------------------------------

    def deploy(self, endpoint: str, model: ModelVersion) -> None:
        """Deploy the version at 0% traffic (100% on an endpoint serving nothing); a deployed version is skipped."""
        if not model.resource_name:
            raise ValueError(f"model.resource_name: {model.pipeline} {model.version} has no Vertex model name")
        current = self._get(self._ensure(endpoint))
        model_id, _, version_id = model.resource_name.rpartition("/models/")[2].partition("@")
        for deployed in current.deployed_models:
            if _model_id(deployed.model) == model_id and deployed.model_version_id == version_id:
                return
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
        what = f"deploy {model.version} to {endpoint}"
        wait(call(self.client, "deploy_model", request, what), what, self.operation_timeout_s, self.poll_interval_s)

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

    def undeploy(self, endpoint: str, version: str) -> None:
        """Remove a version that takes no traffic; a version that is not deployed is left alone."""
        name = self._lookup(endpoint)
        if name is None:
            return
        current = self._get(name)
        deployed_id = self._ids_by_version(current).get(version)
        if deployed_id is None:
            return
        share = current.traffic_split.get(deployed_id, 0)
        if share:
            raise ValueError(f"version {version} still takes {share}% of endpoint {endpoint}; move its traffic first")
        request = {"endpoint": name, "deployed_model_id": deployed_id}
        what = f"undeploy {version} from {endpoint}"
        wait(call(self.client, "undeploy_model", request, what), what, self.operation_timeout_s, self.poll_interval_s)

    def traffic(self, endpoint: str) -> dict[str, int]:
        """{version: percent} over the deployed versions; {} for an endpoint that does not exist."""
        name = self._lookup(endpoint)
        if name is None:
            return {}
        current = self._get(name)
        return {v: int(current.traffic_split.get(i, 0)) for v, i in self._ids_by_version(current).items()}

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
