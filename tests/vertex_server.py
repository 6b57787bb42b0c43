"""A fake Vertex AI REST API on loopback, for boundary tests of the Vertex adapters with the real GAPIC clients.

It records every request (method, path, query, JSON body) and answers as Vertex AI v1 does: resources as JSON with
server-assigned names (carrying the project *number*, as the real API does), long-running Operations with `name`,
`done`, `metadata` and a `response` carrying its `@type`, errors as Google JSON errors. Covered: CustomJobs
(create, get, list with a label filter, cancel), models (upload, get by version or alias, listVersions,
mergeVersionAliases), endpoints (create, get, list by display_name, deployModel, undeployModel, PATCH traffic,
predict routed by the split), and Cloud Monitoring's `projects.timeSeries.list` (filtered, paged) over `time_series`.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.loopback import Recorded

TYPE = "type.googleapis.com/google.cloud.aiplatform.v1."
_PATH = re.compile(r"^/(?P<prefix>v1|ui)/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/(?P<rest>.+)$")
_MONITORING = re.compile(r"^/v3/projects/(?P<project>[^/]+)/timeSeries$")
_TERM = re.compile(r'^\s*(?P<key>[\w.-]+)\s*=\s*"?(?P<value>[^"]*)"?\s*$')
_STATUS = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED"}
_STATUS |= {500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


class ApiError(Exception):
    def __init__(self, code: int, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status or _STATUS.get(code, "FAILED_PRECONDITION")


@dataclass
class _Failure:
    method: str
    path_contains: str
    code: int
    message: str
    times: int


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1e6) % 1000000:06d}Z"


@dataclass
class FakeVertex:
    """State and behaviour of the fake API. `operation_polls`: how many GETs an operation needs to be done
    (0: done at once; -1: never done)."""

    project_number: str = "123456789"
    operation_polls: int = 0
    fail_operations_with: dict[str, Any] | None = None  # google.rpc.Status new operations finish with
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # model id -> version id -> Model
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    time_series: list[dict[str, Any]] = field(default_factory=list)  # Monitoring TimeSeries JSON
    series_page_size: int = 0  # >0: timeSeries.list answers in pages of this size
    predict_error: tuple[int, str] | None = None  # the error every predict answers with
    _failures: list[_Failure] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1001))
    lock: threading.RLock = field(default_factory=threading.RLock)

    # -- what tests use --------------------------------------------------------------------------------------

    def fail_next(self, method: str, path_contains: str, code: int, message: str, times: int = 1) -> None:
        """Answer the next `times` matching requests with an error."""
        self._failures.append(_Failure(method, path_contains, code, message, times))

    def calls(self, method: str | None = None, path_contains: str = "") -> list[Recorded]:
        """Recorded requests, optionally filtered."""
        with self.lock:
            return [r for r in self.requests if (method in (None, r.method)) and path_contains in r.path]

    def set_job(self, name: str, **fields: Any) -> None:
        """Move a CustomJob along, e.g. state="JOB_STATE_FAILED", error={"code": 3, "message": "..."}."""
        with self.lock:
            self.jobs[_tail(name)].update(fields)

    def name(self, location: str, tail: str) -> str:
        return f"projects/{self.project_number}/locations/{location}/{tail}"

    # -- dispatch --------------------------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, body: Any) -> tuple[int, Any]:
        split = urlsplit(raw_path)
        path, query = unquote(split.path), parse_qs(split.query)
        with self.lock:
            self.requests.append(Recorded(method, path, query, body))
            try:
                self._maybe_fail(method, path)
                monitoring = _MONITORING.match(path)
                if monitoring is not None and method == "GET":
                    return 200, self._list_time_series(query)
                match = _PATH.match(path)
                # The GAPIC REST transport polls operations through the API's `/ui/` HTTP binding (its first rule).
                if match is None or (match["prefix"] == "ui" and not (method == "GET" and "/operations/" in path)):
                    raise ApiError(404, f"no route for {path}")
                return 200, self._route(method, match["location"], match["rest"], query, body or {})
            except ApiError as err:
                return err.code, {"error": {"code": err.code, "message": err.message, "status": err.status}}

    def _maybe_fail(self, method: str, path: str) -> None:
        for failure in self._failures:
            if failure.times > 0 and failure.method == method and failure.path_contains in path:
                failure.times -= 1
                raise ApiError(failure.code, failure.message)

    def _route(self, method: str, loc: str, rest: str, query: dict[str, list[str]], body: Any) -> Any:
        if "/operations/" in rest and method == "GET":
            return self._poll(rest)
        resource, _, verb = rest.partition(":")
        parts = resource.split("/")
        routes: dict[tuple[str, str, int, str], Callable[[], Any]] = {
            ("POST", "customJobs", 1, ""): lambda: self._create_job(loc, body),
            ("GET", "customJobs", 1, ""): lambda: {"customJobs": _filtered(self.jobs.values(), query)},
            ("GET", "customJobs", 2, ""): lambda: self._get(self.jobs, resource),
            ("POST", "customJobs", 2, "cancel"): lambda: self._cancel_job(resource),
            ("POST", "models", 1, "upload"): lambda: self._upload(loc, body),
            ("GET", "models", 2, ""): lambda: self._model_version(resource),
            ("GET", "models", 2, "listVersions"): lambda: self._list_versions(parts[1], query),
            ("POST", "models", 2, "mergeVersionAliases"): lambda: self._merge_aliases(resource, body),
            ("POST", "endpoints", 1, ""): lambda: self._create_endpoint(loc, body),
            ("GET", "endpoints", 1, ""): lambda: {"endpoints": _filtered(self.endpoints.values(), query)},
            ("GET", "endpoints", 2, ""): lambda: self._get(self.endpoints, resource),
            ("POST", "endpoints", 2, "deployModel"): lambda: self._deploy(loc, resource, body),
            ("POST", "endpoints", 2, "undeployModel"): lambda: self._undeploy(loc, resource, body),
            ("PATCH", "endpoints", 2, ""): lambda: self._patch_endpoint(resource, query, body),
            ("POST", "endpoints", 2, "predict"): lambda: self._predict(resource, body),
        }
        route = routes.get((method, parts[0], len(parts), verb))
        if route is None:
            raise ApiError(404, f"no route for {method} {rest}")
        return route()

    # -- operations ------------------------------------------------------------------------------------------

    def _operation(self, loc: str, resource: str, kind: str, response: dict[str, Any]) -> dict[str, Any]:
        op_id = str(next(self._ids))
        name = self.name(loc, f"{resource}/operations/{op_id}")
        meta = {"@type": TYPE + kind + "OperationMetadata", "genericMetadata": {"createTime": now()}}
        op = {"name": name, "metadata": meta, "done": False, "_response": response, "_polls": self.operation_polls}
        op["_error"] = self.fail_operations_with
        self.operations[_tail(name)] = op
        return self._view(op)

    def _poll(self, rest: str) -> dict[str, Any]:
        op = self.operations.get(rest)
        if op is None:
            raise ApiError(404, f"operation {rest} not found")
        if op["_polls"] > 0:
            op["_polls"] -= 1
        return self._view(op)

    def _view(self, op: dict[str, Any]) -> dict[str, Any]:
        if op["_polls"] == 0:
            op["done"] = True
        view = {k: v for k, v in op.items() if not k.startswith("_")}
        if op["done"] and op["_error"]:
            view["error"] = op["_error"]
        elif op["done"]:
            view["response"] = op["_response"]
        return view

    # -- custom jobs -----------------------------------------------------------------------------------------

    def _create_job(self, loc: str, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("displayName") or not body.get("jobSpec", {}).get("workerPoolSpecs"):
            raise ApiError(400, "displayName and jobSpec.workerPoolSpecs are required")
        job_id = str(next(self._ids))
        stamp = now()
        job = {**body, "name": self.name(loc, f"customJobs/{job_id}"), "state": "JOB_STATE_PENDING"}
        job.update(createTime=stamp, updateTime=stamp)
        self.jobs[f"customJobs/{job_id}"] = job
        return job

    def _cancel_job(self, resource: str) -> dict[str, Any]:
        job = self._get(self.jobs, resource)
        if job["state"] in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"):
            raise ApiError(400, f"job {resource} is already in state {job['state']}", "FAILED_PRECONDITION")
        job["state"] = "JOB_STATE_CANCELLING"
        return {}

    # -- models ----------------------------------------------------------------------------------------------

    def _upload(self, loc: str, body: dict[str, Any]) -> dict[str, Any]:
        model = body.get("model") or {}
        if not model.get("displayName") or not model.get("containerSpec", {}).get("imageUri"):
            raise ApiError(400, "model.displayName and model.containerSpec.imageUri are required")
        if body.get("parentModel"):
            model_id = _tail(body["parentModel"]).split("/")[1]
            if model_id not in self.models:
                raise ApiError(404, f"parent model {body['parentModel']} not found")
        else:
            model_id = body.get("modelId") or str(next(self._ids))
            if model_id in self.models:
                raise ApiError(409, f"model {model_id} already exists")
            self.models[model_id] = {}
        versions = self.models[model_id]
        version_id = str(len(versions) + 1)
        stamp = now()
        versions[version_id] = {
            **model,
            "name": self.name(loc, f"models/{model_id}"),
            "versionId": version_id,
            "versionAliases": ["default"] if not versions else [],
            "createTime": stamp,
            "versionCreateTime": stamp,
            "versionUpdateTime": stamp,
        }
        if len(versions) > 1:  # "default" follows the newest version, as on Vertex
            for other in versions.values():
                other["versionAliases"] = [a for a in other["versionAliases"] if a != "default"]
            versions[version_id]["versionAliases"].append("default")
        response = {"@type": TYPE + "UploadModelResponse", "model": versions[version_id]["name"]}
        response["modelVersionId"] = version_id
        return self._operation(loc, f"models/{model_id}", "UploadModel", response)

    def _model_version(self, resource: str) -> dict[str, Any]:
        model_id, _, ref = resource.split("/")[1].partition("@")
        versions = self.models.get(model_id)
        if not versions:
            raise ApiError(404, f"model {model_id} not found")
        ref = ref or "default"
        for version in versions.values():
            if ref == version["versionId"] or ref in version["versionAliases"]:
                return version
        raise ApiError(404, f"model {model_id} has no version or alias {ref!r}")

    def _list_versions(self, model_id: str, query: dict[str, list[str]]) -> dict[str, Any]:
        if model_id not in self.models:
            raise ApiError(404, f"model {model_id} not found")
        return {"models": _filtered(self.models[model_id].values(), query)}

    def _merge_aliases(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        if "@" not in resource:
            raise ApiError(400, "name must include a version id")
        version = self._model_version(resource)
        siblings = self.models[resource.split("/")[1].partition("@")[0]].values()
        for alias in body.get("versionAliases", []):
            if alias.startswith("-"):
                version["versionAliases"] = [a for a in version["versionAliases"] if a != alias[1:]]
            elif any(alias in v["versionAliases"] for v in siblings if v is not version):
                raise ApiError(400, f"alias {alias} is already used by another version")
            elif alias not in version["versionAliases"]:
                version["versionAliases"].append(alias)
        return version

    # -- endpoints -------------------------------------------------------------------------------------------

    def _create_endpoint(self, loc: str, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("displayName"):
            raise ApiError(400, "endpoint.displayName is required")
        endpoint_id = str(next(self._ids))
        stamp = now()
        endpoint = {**body, "name": self.name(loc, f"endpoints/{endpoint_id}"), "createTime": stamp}
        endpoint.update(updateTime=stamp, deployedModels=[], trafficSplit={})
        self.endpoints[f"endpoints/{endpoint_id}"] = endpoint
        return self._operation(
            loc, f"endpoints/{endpoint_id}", "CreateEndpoint", {"@type": TYPE + "Endpoint", **endpoint}
        )

    def _deploy(self, loc: str, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._get(self.endpoints, resource)
        deployed = dict(body.get("deployedModel") or {})
        version = self._model_version(_tail(deployed.get("model", "")))
        if not deployed.get("dedicatedResources", {}).get("machineSpec", {}).get("machineType"):
            raise ApiError(400, "deployedModel.dedicatedResources.machineSpec.machineType is required")
        deployed.update(id=str(next(self._ids)) + "000", model=version["name"], modelVersionId=version["versionId"])
        deployed["createTime"] = now()
        split = {(deployed["id"] if k == "0" else k): v for k, v in (body.get("trafficSplit") or {}).items()}
        endpoint["deployedModels"].append(deployed)
        if split:
            self._set_split(endpoint, split)
        response = {"@type": TYPE + "DeployModelResponse", "deployedModel": deployed}
        return self._operation(loc, resource, "DeployModel", response)

    def _undeploy(self, loc: str, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._get(self.endpoints, resource)
        target = body.get("deployedModelId")
        if target not in {d["id"] for d in endpoint["deployedModels"]}:
            raise ApiError(404, f"deployed model {target} not found")
        if endpoint["trafficSplit"].get(target, 0) > 0 and not body.get("trafficSplit"):
            raise ApiError(400, f"deployed model {target} still takes traffic", "FAILED_PRECONDITION")
        endpoint["deployedModels"] = [d for d in endpoint["deployedModels"] if d["id"] != target]
        endpoint["trafficSplit"] = {k: v for k, v in endpoint["trafficSplit"].items() if k != target}
        return self._operation(loc, resource, "UndeployModel", {"@type": TYPE + "UndeployModelResponse"})

    def _patch_endpoint(self, resource: str, query: dict[str, list[str]], body: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._get(self.endpoints, resource)
        if query.get("updateMask") != ["trafficSplit"]:
            raise ApiError(400, f"unsupported updateMask {query.get('updateMask')}")
        self._set_split(endpoint, body.get("trafficSplit") or {})
        return endpoint

    def _predict(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        """One prediction (the instance's length) per instance, by the deployed model with the largest share."""
        endpoint = self._get(self.endpoints, resource)
        instances = body.get("instances")
        if not isinstance(instances, list) or not instances:
            raise ApiError(400, "instances must be a non-empty list")
        if not endpoint["trafficSplit"]:
            raise ApiError(400, f"endpoint {resource} has no deployed model taking traffic", "FAILED_PRECONDITION")
        if self.predict_error is not None:
            raise ApiError(*self.predict_error)
        served = max(endpoint["trafficSplit"], key=lambda k: endpoint["trafficSplit"][k])
        deployed = next(d for d in endpoint["deployedModels"] if d["id"] == served)
        return {
            "predictions": [len(i) if isinstance(i, list) else 0 for i in instances],
            "deployedModelId": served,
            "model": deployed["model"],
            "modelVersionId": deployed["modelVersionId"],
        }

    def _list_time_series(self, query: dict[str, list[str]]) -> dict[str, Any]:
        """Series matching every `key="value"` term of the filter, with points inside the interval; paged."""
        terms = [t for t in query.get("filter", [""])[0].split(" AND ") if t.strip()]
        if not terms or not query.get("interval.endTime"):
            raise ApiError(400, "filter and interval.endTime are required")
        wanted = []
        for term in terms:
            match = _TERM.match(term)
            if match is None:
                raise ApiError(400, f"unsupported filter term {term!r}")
            wanted.append((match["key"], match["value"]))
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

    def _set_split(self, endpoint: dict[str, Any], split: dict[str, int]) -> None:
        known = {d["id"] for d in endpoint["deployedModels"]}
        if not set(split) <= known or sum(split.values()) != 100:
            raise ApiError(400, f"traffic split {split} must name deployed models and sum to 100")
        endpoint["trafficSplit"] = dict(split)

    def _get(self, table: dict[str, dict[str, Any]], resource: str) -> dict[str, Any]:
        if resource not in table:
            raise ApiError(404, f"{resource} not found")
        return table[resource]


def _tail(name: str) -> str:
    """The part of a resource name after projects/*/locations/*/."""
    return name.split("/", 4)[4] if name.count("/") >= 4 else name


def _series_value(series: dict[str, Any], key: str) -> Any:
    """A TimeSeries' value for a Monitoring filter key (metric.type, resource.labels.K, metric.labels.K)."""
    kind, _, rest = key.partition(".")
    part = series.get(kind, {})
    if rest == "type":
        return part.get("type")
    return part.get("labels", {}).get(rest.removeprefix("labels.").removeprefix("label."))


def _filtered(items: Any, query: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Items matching a Vertex list filter of `key="value"` terms joined by AND (labels.K, display_name)."""
    terms = [t for t in query.get("filter", [""])[0].split(" AND ") if t.strip()]
    wanted: list[tuple[str, str]] = []
    for term in terms:
        match = _TERM.match(term)
        if match is None:
            raise ApiError(400, f"unsupported filter term {term!r}")
        wanted.append((match["key"], match["value"]))

    def value(item: dict[str, Any], key: str) -> Any:
        if key.startswith("labels."):
            return item.get("labels", {}).get(key.removeprefix("labels."))
        return item.get({"display_name": "displayName"}.get(key, key))

    return [dict(i) for i in items if all(value(i, k) == v for k, v in wanted)]


def _handler(fake: FakeVertex) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            body = json.loads(raw) if raw.strip() else None
            status, payload = fake.handle(self.command, self.path, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _serve  # noqa: N815 (http.server's naming)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


class VertexServer:
    """Runs a FakeVertex on a free loopback port; use as a context manager."""

    def __init__(self, fake: FakeVertex | None = None) -> None:
        self.fake = fake or FakeVertex()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.fake))
        self._server.daemon_threads = True
        self.fake.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeVertex:
        self._thread.start()
        return self.fake

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2)
