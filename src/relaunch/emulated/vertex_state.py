"""The Vertex AI stand-in's state and what its resources share: errors, names, long-running operations, filters.

`VertexState` holds every table; `vertex_jobs`, `vertex_models` and `vertex_endpoints` add each resource's
behaviour to it and `vertex.FakeVertex` puts them together behind the HTTP routes.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relaunch.emulated.loopback import Recorded
from relaunch.emulated.vertex_runner import JobRunner

TYPE = "type.googleapis.com/google.cloud.aiplatform.v1."
FINAL_STATES = ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED")
_TERM = re.compile(r'^\s*(?P<key>[\w.-]+)\s*=\s*"?(?P<value>[^"]*)"?\s*$')
_STATUS = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED"}
_STATUS |= {500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


class ApiError(Exception):
    """An error answer: HTTP code, message, google.rpc status name and optional `details` (google.rpc types)."""

    def __init__(self, code: int, message: str, status: str | None = None, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status or _STATUS.get(code, "FAILED_PRECONDITION")
        self.details = details or []

    def body(self) -> dict[str, Any]:
        """The Google JSON error body."""
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        return {"error": error | ({"details": self.details} if self.details else {})}


@dataclass(frozen=True)
class Refusal:
    """A request refused because its body breaks the published API description: the request and every problem."""

    request: Recorded
    problems: list[str]


@dataclass
class _Failure:
    method: str
    path_contains: str
    code: int
    message: str
    times: int


def now() -> str:
    """RFC 3339 in UTC with microseconds, as the API answers times (one clock reading: seconds and fraction agree)."""
    stamp = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + f".{int(stamp * 1e6) % 1000000:06d}Z"


@dataclass
class VertexState:
    """State of the fake API. `operation_polls`: how many GETs an operation needs to be done (0: done at once; -1:
    never done); `operation_polls_by_kind` overrides it per operation kind (e.g. "DeployModel"). A deployment or
    undeployment changes the endpoint when its operation is done, not when it starts. With a `runner`, a created
    CustomJob really runs (vertex_runner), its gs:// folders under `storage_root` (the Cloud Storage stand-in's
    root), and `on_job_end(job)` is called when it reaches a final state; with a `storage_root`, predictions come
    from the deployed model's model.joblib."""

    project_number: str = "123456789"
    operation_polls: int = 0
    operation_polls_by_kind: dict[str, int] = field(default_factory=dict)
    fail_operations_with: dict[str, Any] | None = None  # google.rpc.Status new operations finish with
    runner: JobRunner | None = None
    storage_root: Path | None = None
    on_job_end: Callable[[dict[str, Any]], None] | None = None
    validate: bool = True  # refuse request bodies the discovery document does not allow
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    tuning_jobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # HyperparameterTuningJobs (vertex_tuning)
    tuning_objective: Callable[[dict[str, Any]], float | None] = field(default=lambda params: default_objective(params))
    models: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # model id -> version id -> Model
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    evaluations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # "model@version" -> ModelEvaluations
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    time_series: list[dict[str, Any]] = field(default_factory=list)  # Monitoring TimeSeries JSON
    series_page_size: int = 0  # >0: timeSeries.list answers in pages of this size
    predict_error: tuple[int, str] | None = None  # the error every predict answers with
    _failures: list[_Failure] = field(default_factory=list)
    _tuning_projects: dict[str, str] = field(default_factory=dict)  # tuning job -> the project its trials run in
    _uploading: dict[str, list[str]] = field(default_factory=dict)  # model id -> version ids whose upload runs
    _loaded: dict[Path, tuple[float, Any]] = field(default_factory=dict)  # model.joblib path -> (mtime, model)
    _ids: Any = field(default_factory=lambda: itertools.count(1001))
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        if self.runner is not None and self.storage_root is None:
            raise ValueError("FakeVertex: a runner needs storage_root (the Cloud Storage stand-in's root folder)")

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
            self.jobs[tail(name)].update(fields)

    def finish_operations(self, error: dict[str, Any] | None = None) -> None:
        """End every running operation now, successfully or with the google.rpc.Status `error`."""
        with self.lock:
            for op in self.operations.values():
                if not op["done"]:
                    op["_polls"], op["_error"] = 0, error
                    self._view(op)

    def name(self, location: str, tail: str) -> str:
        return f"projects/{self.project_number}/locations/{location}/{tail}"

    def _maybe_fail(self, method: str, path: str) -> None:
        for failure in self._failures:
            if failure.times > 0 and failure.method == method and failure.path_contains in path:
                failure.times -= 1
                raise ApiError(failure.code, failure.message)

    # -- operations ------------------------------------------------------------------------------------------

    def _operation(
        self,
        loc: str,
        resource: str,
        kind: str,
        response: dict[str, Any],
        on_done: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        op_id = str(next(self._ids))
        name = self.name(loc, f"{resource}/operations/{op_id}")
        meta = {"@type": TYPE + kind + "OperationMetadata", "genericMetadata": {"createTime": now()}}
        polls = self.operation_polls_by_kind.get(kind, self.operation_polls)
        op = {"name": name, "metadata": meta, "done": False, "_response": response, "_polls": polls}
        op["_error"], op["_on_done"] = self.fail_operations_with, on_done
        self.operations[tail(name)] = op
        return self._view(op)

    def _poll(self, rest: str) -> dict[str, Any]:
        op = self.operations.get(rest)
        if op is None:
            raise ApiError(404, f"operation {rest} not found")
        if op["_polls"] > 0:
            op["_polls"] -= 1
        return self._view(op)

    def _list_operations(self, resource: str, query: dict[str, list[str]]) -> dict[str, Any]:
        """The operations on a resource (google.longrunning ListOperations); no filter is supported."""
        if query.get("filter", [""])[0]:
            raise ApiError(400, "filter is not supported by this fake")
        prefix = f"{resource}/operations/"
        return {"operations": [self._view(op) for key, op in self.operations.items() if key.startswith(prefix)]}

    def _view(self, op: dict[str, Any]) -> dict[str, Any]:
        if op["_polls"] == 0 and not op["done"]:
            op["done"] = True
            if op["_on_done"] is not None and not op["_error"]:
                op["_on_done"]()
        view = {k: v for k, v in op.items() if not k.startswith("_")}
        if op["done"] and op["_error"]:
            view["error"] = op["_error"]
        elif op["done"]:
            view["response"] = op["_response"]
        return view

    def _get(self, table: dict[str, dict[str, Any]], resource: str) -> dict[str, Any]:
        if resource not in table:
            raise ApiError(404, f"{resource} not found")
        return table[resource]


def tail(name: str) -> str:
    """The part of a resource name after projects/*/locations/*/."""
    return name.split("/", 4)[4] if name.count("/") >= 4 else name


def filter_terms(query: dict[str, list[str]]) -> list[tuple[str, str]]:
    """The `key="value"` terms, joined by AND, of a list request's filter (400 on anything else)."""
    wanted: list[tuple[str, str]] = []
    for term in (t for t in query.get("filter", [""])[0].split(" AND ") if t.strip()):
        match = _TERM.match(term)
        if match is None:
            raise ApiError(400, f"unsupported filter term {term!r}")
        wanted.append((match["key"], match["value"]))
    return wanted


def filtered(items: Any, query: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Items matching a Vertex list filter of `key="value"` terms joined by AND (labels.K, display_name)."""
    wanted = filter_terms(query)

    def value(item: dict[str, Any], key: str) -> Any:
        if key.startswith("labels."):
            return item.get("labels", {}).get(key.removeprefix("labels."))
        return item.get({"display_name": "displayName"}.get(key, key))

    return [dict(i) for i in items if all(value(i, k) == v for k, v in wanted)]


def default_objective(params: dict[str, Any]) -> float | None:
    """The simulated objective: higher for numeric parameters nearer 1 (so the best trial is predictable)."""
    numbers = [float(v) for v in params.values() if isinstance(v, int | float) and not isinstance(v, bool)]
    return round(1.0 / (1.0 + sum(abs(math.log10(abs(v) or 1e-9)) for v in numbers)), 6)
