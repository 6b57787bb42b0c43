"""`Endpoint` client for the local endpoint server (HTTP, JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # loaded when the endpoint is first asked: an orchestrator that never asks never pays
    import requests

from relaunch.adapters.local.secret_files import read_secret
from relaunch.domain.model import EndpointHealth, ModelVersion
from relaunch.domain.ports import TransientError

ROUTE_KEY_HEADER = "x-relaunch-route-key"
TOKEN_FILE = "endpoint_token"  # in the stack's secrets folder; the endpoint server creates it


class EndpointNotFound(ValueError, LookupError):
    """The endpoint (or a model to serve) does not exist: a 404, still a ValueError like every 4xx."""


class HttpEndpoint:
    """Talks to an EndpointServer: 4xx raises ValueError (permanent), 5xx and network errors TransientError.

    Deploy, traffic and undeploy calls carry the bearer token read from `token_path` (the server's token file)."""

    def __init__(self, base_url: str, timeout: float = 30, *, token_path: Path | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.token_path = token_path
        self._session: requests.Session | None = None  # made by the first call

    can_address_versions = True  # predict takes a `version` and serves it whatever its share

    def deploy(self, endpoint: str, model: ModelVersion, *, operation: str | None = None) -> None:
        """Deploy the version at 0% traffic (100% if it is the first); deploying it again is a no-op. Done when it
        returns (the server loads the model in the request): there is never an operation to poll."""
        body = {"version": model.version, "artifact_uri": model.artifact_uri}
        if env := model.metadata.get("python_environment"):  # served with the packages it was trained with
            body["python_environment"] = env
        self._call("POST", f"{endpoint}:deploy", body, self._auth())

    def set_traffic(self, endpoint: str, split: dict[str, int]) -> None:
        """Set percentages per deployed version (summing to 100; unnamed versions get 0)."""
        self._call("POST", f"{endpoint}:setTraffic", {"split": split}, self._auth())

    def undeploy(self, endpoint: str, version: str, *, operation: str | None = None) -> None:
        """Remove a version that takes no traffic, or the endpoint's only version (the server refuses otherwise);
        done when it returns."""
        self._call("POST", f"{endpoint}:undeploy", {"version": version}, self._auth())

    def traffic(self, endpoint: str) -> dict[str, int]:
        """The current split; {} for an endpoint nothing was ever deployed to."""
        try:
            described = self.describe(endpoint)
        except LookupError:
            return {}
        return {str(v): int(p) for v, p in described["split"].items()}

    def describe(self, endpoint: str) -> dict[str, Any]:
        """Deployed versions, split and per-version stats (LookupError if the endpoint does not exist)."""
        return self._call("GET", endpoint)

    def predict(
        self, endpoint: str, instances: list[Any], route_key: str | None = None, version: str | None = None
    ) -> dict[str, Any]:
        """Predictions with the version that served them; `route_key` pins routing for a caller, `version` sends
        the request to that deployed version whatever its share (a smoke test of a version at 0%)."""
        headers = {ROUTE_KEY_HEADER: route_key} if route_key is not None else {}
        body: dict[str, Any] = {"instances": instances}
        if version is not None:
            body["version"] = version
        return self._call("POST", f"{endpoint}:predict", body, headers)

    def health(self, endpoint: str, version: str, since: float) -> EndpointHealth:
        """What the server counted for `version` since `since` (epoch seconds): requests, errors, latency."""
        answer = self._call("GET", f"{endpoint}:health", params={"version": version, "since": repr(float(since))})
        return EndpointHealth.model_validate(answer)

    def _auth(self) -> dict[str, str]:
        # Read on every call: the server creates the file when it starts, which may be after this client exists.
        token = read_secret(self.token_path) if self.token_path is not None else None
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        import requests  # noqa: PLC0415

        url = f"{self.base_url}/v1/endpoints/{path}"
        self._session = self._session or requests.Session()
        try:
            response = self._session.request(
                method, url, json=body, headers=headers, params=params, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise TransientError(f"endpoint server unreachable at {url}: {exc}") from exc
        if response.status_code >= 500:
            raise TransientError(f"{method} {url} -> {response.status_code}: {_message(response)}")
        if response.status_code == 404:
            raise EndpointNotFound(f"{method} {url} -> 404: {_message(response)}")
        if response.status_code >= 400:
            raise ValueError(f"{method} {url} -> {response.status_code}: {_message(response)}")
        payload: dict[str, Any] = response.json()
        return payload


def _message(response: requests.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:500]
