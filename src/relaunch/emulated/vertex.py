"""A Vertex AI REST API stand-in on loopback, for the Vertex adapters with the real GAPIC clients.

It records every request (method, path, query, JSON body) and answers as Vertex AI v1 does: resources as JSON with
server-assigned names (carrying the project *number*, as the real API does), long-running Operations with `name`,
`done`, `metadata` and a `response` carrying its `@type`, errors as Google JSON errors. Covered: CustomJobs
(create, get, list with a label filter, cancel), HyperparameterTuningJobs (the same four, trials simulated: see
vertex_tuning), models (upload, get by version or alias, listVersions, mergeVersionAliases, evaluations import and
list), endpoints (create, get, list by display_name, deployModel, undeployModel, PATCH traffic, predict routed by
the split), and Cloud Monitoring's `projects.timeSeries.list` (filtered, paged) over `time_series`.

Every request body is checked against the schema the aiplatform v1 discovery document names as the method's
`request` (discovery/aiplatform.v1.requests.json); a body it does not allow is answered 400 INVALID_ARGUMENT naming
the field, as the API answers, and kept in `refused`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from relaunch.emulated.discovery_schema import document, problems
from relaunch.emulated.loopback import Recorded, loopback_server, send_json
from relaunch.emulated.proto_enums import named_enums
from relaunch.emulated.vertex_endpoints import VertexEndpoints
from relaunch.emulated.vertex_jobs import VertexJobs
from relaunch.emulated.vertex_runner import JobRunner
from relaunch.emulated.vertex_state import TYPE, ApiError, Refusal, filter_terms, filtered, now
from relaunch.emulated.vertex_tuning import VertexTuning

__all__ = ["TYPE", "ApiError", "FakeVertex", "JobRunner", "Refusal", "VertexServer", "now"]

DISCOVERY = "aiplatform.v1.requests"
_PATH = re.compile(r"^/(?P<prefix>v1|ui)/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/(?P<rest>.+)$")
_MONITORING = re.compile(r"^/v3/projects/(?P<project>[^/]+)/timeSeries$")
_V1 = "GoogleCloudAiplatformV1"
# (method, collection, path segments, verb) -> the method's `request.$ref` in the discovery document and, when the
# body is a resource rather than a request message, the request field it fills (how the API names its path).
REQUEST_SCHEMAS: dict[tuple[str, str, int, str], tuple[str, str]] = {
    ("POST", "customJobs", 1, ""): (f"{_V1}CustomJob", "custom_job"),
    ("POST", "customJobs", 2, "cancel"): (f"{_V1}CancelCustomJobRequest", ""),
    ("POST", "hyperparameterTuningJobs", 1, ""): (f"{_V1}HyperparameterTuningJob", "hyperparameter_tuning_job"),
    ("POST", "hyperparameterTuningJobs", 2, "cancel"): (f"{_V1}CancelHyperparameterTuningJobRequest", ""),
    ("POST", "models", 1, "upload"): (f"{_V1}UploadModelRequest", ""),
    ("POST", "models", 2, "mergeVersionAliases"): (f"{_V1}MergeVersionAliasesRequest", ""),
    ("POST", "models", 3, "import"): (f"{_V1}ImportModelEvaluationRequest", ""),
    ("POST", "endpoints", 1, ""): (f"{_V1}Endpoint", "endpoint"),
    ("POST", "endpoints", 2, "deployModel"): (f"{_V1}DeployModelRequest", ""),
    ("POST", "endpoints", 2, "undeployModel"): (f"{_V1}UndeployModelRequest", ""),
    ("PATCH", "endpoints", 2, ""): (f"{_V1}Endpoint", "endpoint"),
    ("POST", "endpoints", 2, "predict"): (f"{_V1}PredictRequest", ""),
}


class FakeVertex(VertexJobs, VertexTuning, VertexEndpoints):
    """The stand-in's behaviour (see VertexState for its options); `handle` answers one HTTP request."""

    def handle(self, method: str, raw_path: str, body: Any) -> tuple[int, Any]:
        split = urlsplit(raw_path)
        path, query = unquote(split.path), parse_qs(split.query)
        with self.lock:
            request = Recorded(method, path, query, body)
            self.requests.append(request)
            try:
                self._maybe_fail(method, path)
                monitoring = _MONITORING.match(path)
                if monitoring is not None and method == "GET":
                    return 200, self._list_time_series(query)
                match = _PATH.match(path)
                # The GAPIC REST transport polls operations through the API's `/ui/` HTTP binding (its first rule).
                if match is None or (match["prefix"] == "ui" and not (method == "GET" and "/operations" in path)):
                    raise ApiError(404, f"no route for {path}")
                return 200, self._route(request, match["project"], match["location"], match["rest"])
            except ApiError as err:
                return err.code, err.body()

    def stop(self) -> None:
        """Kill the jobs the runner still runs (none without a runner)."""
        if self.runner is not None:
            self.runner.stop()

    def _route(self, request: Recorded, project: str, loc: str, rest: str) -> Any:
        method, query = request.method, request.query
        if "/operations/" in rest and method == "GET":
            return self._poll(rest)
        if rest.endswith("/operations") and method == "GET":
            return self._list_operations(rest.removesuffix("/operations"), query)
        resource, _, verb = rest.partition(":")
        parts = resource.split("/")
        key = (method, parts[0], len(parts), verb)
        body = self._checked(request, key)
        routes: dict[tuple[str, str, int, str], Callable[[], Any]] = {
            ("POST", "customJobs", 1, ""): lambda: self._create_job(project, loc, body),
            ("GET", "customJobs", 1, ""): lambda: {"customJobs": filtered(self.jobs.values(), query)},
            ("GET", "customJobs", 2, ""): lambda: self._get(self.jobs, resource),
            ("POST", "customJobs", 2, "cancel"): lambda: self._cancel_job(resource),
            ("POST", "hyperparameterTuningJobs", 1, ""): lambda: self._create_tuning_job(project, loc, body),
            ("GET", "hyperparameterTuningJobs", 1, ""): lambda: self._list_tuning_jobs(query),
            ("GET", "hyperparameterTuningJobs", 2, ""): lambda: self._get_tuning_job(resource),
            ("POST", "hyperparameterTuningJobs", 2, "cancel"): lambda: self._cancel_tuning_job(resource),
            ("POST", "models", 1, "upload"): lambda: self._upload(loc, body),
            ("GET", "models", 2, ""): lambda: self._model_version(resource),
            ("GET", "models", 2, "listVersions"): lambda: self._list_versions(parts[1], query),
            ("POST", "models", 2, "mergeVersionAliases"): lambda: self._merge_aliases(resource, body),
            ("POST", "models", 3, "import"): lambda: self._import_evaluation(loc, parts[1], body),
            ("GET", "models", 3, ""): lambda: {"modelEvaluations": self.evaluations.get(self._versioned(parts[1]), [])},
            ("POST", "endpoints", 1, ""): lambda: self._create_endpoint(loc, body),
            ("GET", "endpoints", 1, ""): lambda: {"endpoints": filtered(self.endpoints.values(), query)},
            ("GET", "endpoints", 2, ""): lambda: self._get(self.endpoints, resource),
            ("POST", "endpoints", 2, "deployModel"): lambda: self._deploy(loc, resource, body),
            ("POST", "endpoints", 2, "undeployModel"): lambda: self._undeploy(loc, resource, body),
            ("PATCH", "endpoints", 2, ""): lambda: self._patch_endpoint(resource, query, body),
            ("POST", "endpoints", 2, "predict"): lambda: self._predict(resource, body),
        }
        route = routes.get(key)
        if route is None:
            raise ApiError(404, f"no route for {method} {rest}")
        return route()

    def _checked(self, request: Recorded, key: tuple[str, str, int, str]) -> Any:
        """The body as the API reads it (enums named); 400 INVALID_ARGUMENT, as the API answers, when it breaks
        the method's request schema."""
        body = request.body or {}
        if not self.validate or key not in REQUEST_SCHEMAS:
            return body
        schema, field = REQUEST_SCHEMAS[key]
        body = named_enums(_message(schema), body)
        found = [_field_path(line, schema, field) for line in problems(document(DISCOVERY), schema, body)]
        if not found:
            return body
        self.refused.append(Refusal(request, found))
        violations = [{"field": line.partition(":")[0], "description": line} for line in found]
        raise ApiError(
            400,
            "Invalid JSON payload received. " + "; ".join(found),
            details=[{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": violations}],
        )

    def _list_time_series(self, query: dict[str, list[str]]) -> dict[str, Any]:
        """Series matching every `key="value"` term of the filter, with points inside the interval; paged."""
        wanted = filter_terms(query)
        if not wanted or not query.get("interval.endTime"):
            raise ApiError(400, "filter and interval.endTime are required")
        start = query.get("interval.startTime", [""])[0]
        end = query["interval.endTime"][0]
        found = []
        for series in self.time_series:
            if all(_series_value(series, key) == value for key, value in wanted):
                points = [p for p in series["points"] if start <= p["interval"]["endTime"] <= end]
                found.append({**series, "points": points})
        offset = int(query.get("pageToken", ["0"])[0] or 0)
        size = self.series_page_size or len(found) or 1
        page = found[offset : offset + size]
        more = offset + size < len(found)
        return {"timeSeries": page, **({"nextPageToken": str(offset + size)} if more else {})}


def _message(schema: str) -> Any:
    """The proto descriptor of a discovery schema's message (GoogleCloudAiplatformV1CustomJob: CustomJob)."""
    from google.cloud import aiplatform_v1

    return getattr(aiplatform_v1, schema.removeprefix(_V1)).pb().DESCRIPTOR


def _field_path(line: str, schema: str, field: str) -> str:
    """A problem line with its schema-name root replaced by the request field it is about (`custom_job.jobSpec`)."""
    rest = line.removeprefix(schema)
    return f"{field}{rest}" if field else rest.removeprefix(".")


def _series_value(series: dict[str, Any], key: str) -> Any:
    """A TimeSeries' value for a Monitoring filter key (metric.type, resource.labels.K, metric.labels.K)."""
    kind, _, rest = key.partition(".")
    part = series.get(kind, {})
    if rest == "type":
        return part.get("type")
    return part.get("labels", {}).get(rest.removeprefix("labels.").removeprefix("label."))


def _handler(fake: FakeVertex) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            try:
                body = json.loads(raw) if raw.strip() else None
            except ValueError as exc:
                status, payload = 400, ApiError(400, f"Invalid JSON payload received. {exc}").body()
            else:
                status, payload = fake.handle(self.command, self.path, body)
            send_json(self, status, payload)

        do_GET = do_POST = do_PATCH = do_DELETE = _serve  # noqa: N815 (http.server's naming)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


class VertexServer:
    """Runs a FakeVertex on a free loopback port; use as a context manager (it yields the FakeVertex, whose `url`
    is set). Leaving it stops the server and kills the jobs still running."""

    def __init__(self, fake: FakeVertex | None = None) -> None:
        self.fake = fake or FakeVertex()
        self._stack = ExitStack()

    def __enter__(self) -> FakeVertex:
        self._stack.callback(self.fake.stop)
        self.fake.url = self._stack.enter_context(loopback_server(_handler(self.fake)))
        return self.fake

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
