"""What the Vertex AI adapters share: GAPIC clients on the REST transport, error mapping, long-running operations.

Only `google.cloud.aiplatform_v1` (the GAPIC layer) is used, imported on first use: the high-level
`google.cloud.aiplatform` module costs seconds of import that a Cloud Function pays on every cold start.
Errors follow the ports' convention: TransientError for what a redelivery may fix (429, 5xx, deadlines, a lost
creation race, a connection failure, an operation still running at the timeout), ValueError for a refusal.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import re
from typing import Any

from relaunch.adapters.gcp.local_endpoint import credentials_for
from relaunch.domain.ports import TransientError

CALL_TIMEOUT_S = 30.0
_LABEL_BAD_CHARS = re.compile(r"[^a-z0-9_-]")
_LABEL_MAX = 63


class VertexNotFound(ValueError, LookupError):
    """Vertex AI answered 404: still a ValueError (permanent) like every refusal; callers may read it as 'absent'."""


def regional_host(region: str, api_endpoint: str | None) -> str:
    """The API host: Vertex AI resources live behind a regional endpoint, tests point it at a local server."""
    return api_endpoint or f"{region}-aiplatform.googleapis.com"


def make_client(kind: str, region: str, api_endpoint: str | None, credentials: Any | None) -> Any:
    """A GAPIC client of `aiplatform_v1` (JobServiceClient, ModelServiceClient, EndpointServiceClient)."""
    from google.cloud import aiplatform_v1

    client_class = getattr(aiplatform_v1, kind)
    # REST: no gRPC channel to set up, and the transport the boundary tests exercise.
    return client_class(
        credentials=credentials,
        transport="rest",
        client_options={"api_endpoint": regional_host(region, api_endpoint)},
    )


class VertexService:
    """What every Vertex adapter shares: project and region, the regional parent, one lazily built GAPIC client."""

    client_kind: str = ""  # e.g. "JobServiceClient"

    def __init__(self, project: str, region: str, api_endpoint: str | None, credentials: Any | None) -> None:
        self.project = project
        self.region = region
        self._api_endpoint = api_endpoint
        self._credentials = credentials_for(api_endpoint, credentials)  # a loopback stand-in: anonymous
        self._client: Any | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(project={self.project!r}, region={self.region!r})"

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client(self.client_kind, self.region, self._api_endpoint, self._credentials)
        return self._client


def require(owner: str, **values: str | None) -> None:
    """ValueError naming the first empty constructor argument."""
    for field, value in values.items():
        if not value or not value.strip():
            raise ValueError(f"{owner}: {field} must not be empty")


def call(client: Any, method: str, request: Any, what: str) -> Any:
    """One API call without client-side retries (a TransientError makes the platform redeliver instead)."""
    from google.api_core import exceptions as gexc

    try:
        return getattr(client, method)(request=request, retry=None, timeout=CALL_TIMEOUT_S)
    except gexc.GoogleAPIError as exc:
        raise map_error(exc, what) from exc
    except OSError as exc:  # connection refused or reset (requests' errors are OSErrors)
        raise TransientError(f"Vertex AI {what}: {exc}") from exc


def wait(operation: Any, what: str, timeout_s: float, poll_s: float = 2.0) -> Any:
    """The result of a long-running operation; TransientError if it is still running after `timeout_s`."""
    try:
        return _result(operation, what, timeout_s, poll_s)
    except concurrent.futures.TimeoutError as exc:
        name = getattr(operation.operation, "name", "?")
        raise TransientError(f"Vertex AI {what}: operation {name} not done after {timeout_s:g}s") from exc


def wait_briefly(operation: Any, what: str, bound_s: float, poll_s: float = 2.0) -> str | None:
    """None once the operation is done within `bound_s`, else its name: the caller records it and polls it later
    (`poll`) instead of waiting out an operation that may take longer than the function calling it may live."""
    try:
        _result(operation, what, bound_s, poll_s)
    except concurrent.futures.TimeoutError:
        return str(operation.operation.name)
    return None


def poll(client: Any, name: str, what: str) -> bool:
    """Whether operation `name` is done; ValueError carrying Vertex's reason when it ended in an error."""
    operation = call(client, "get_operation", {"name": name}, what)
    if not operation.done:
        return False
    if operation.HasField("error"):
        raise ValueError(f"Vertex AI {what} failed: {operation.error.code} {operation.error.message}")
    return True


def running_operation(client: Any, resource: str, kind: str, what: str) -> str | None:
    """An operation of `kind` (e.g. "DeployModel") still running on `resource`: one started by a call that died
    before its caller recorded the name. Filtered here by its metadata type (Vertex documents no filter syntax)."""
    request: dict[str, Any] = {"name": resource}
    while True:
        page = call(client, "list_operations", request, what)
        for operation in page.operations:
            if not operation.done and operation.metadata.type_url.endswith(f".{kind}OperationMetadata"):
                return str(operation.name)
        if not page.next_page_token:
            return None
        request["page_token"] = page.next_page_token


def _result(operation: Any, what: str, timeout_s: float, poll_s: float) -> Any:
    """The operation's result; concurrent.futures.TimeoutError while it runs past `timeout_s`."""
    from google.api_core import exceptions as gexc
    from google.api_core import retry as gretry
    from google.api_core.future import polling

    policy = polling.DEFAULT_POLLING.with_delay(initial=poll_s, maximum=max(poll_s, 30.0), multiplier=1.5)
    once = gretry.Retry(predicate=lambda _exc: False, timeout=CALL_TIMEOUT_S)  # each poll: no retry of its own
    try:
        return operation.result(timeout=timeout_s, retry=once, polling=policy)
    except concurrent.futures.TimeoutError:
        raise
    except gexc.GoogleAPIError as exc:
        raise map_error(exc, what) from exc
    except OSError as exc:
        raise TransientError(f"Vertex AI {what}: {exc}") from exc


def map_error(exc: Any, what: str) -> Exception:
    """The ports' error for an api_core exception."""
    from google.api_core import exceptions as gexc

    if isinstance(exc, gexc.GoogleAPICallError):
        detail = f"{exc.code} {exc.message}"
        if isinstance(exc, gexc.TooManyRequests | gexc.ServerError | gexc.Conflict):
            # Conflict: ALREADY_EXISTS/ABORTED from a concurrent creator; the retry finds what it created.
            return TransientError(f"Vertex AI {what}: {detail}")
        if isinstance(exc, gexc.NotFound):
            return VertexNotFound(f"Vertex AI {what}: not found: {exc.message}")
        return ValueError(f"Vertex AI {what} refused: {detail}")
    # RetryError and anything else api_core raises without a status: a timeout or a transport failure.
    return TransientError(f"Vertex AI {what}: {exc}")


def label_value(value: str) -> str:
    """`value` made a valid Vertex label (lowercase, [a-z0-9_-], at most 63 characters, distinct when cut)."""
    label = _LABEL_BAD_CHARS.sub("-", value.lower())
    if len(label) <= _LABEL_MAX and label == value.lower():
        return label
    # Lossy: keep what fits and add a digest of the original, so two values never share a label.
    digest = hashlib.sha256(value.encode()).hexdigest()[:12]
    return f"{label[: _LABEL_MAX - 13]}-{digest}"


def key_digest(key: str) -> str:
    """The label standing for an idempotency key."""
    return hashlib.sha256(key.encode()).hexdigest()[:40]
