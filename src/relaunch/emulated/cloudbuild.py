"""A local stand-in for the Cloud Build REST API (v1): records every request and keeps builds in memory.

A CreateBuild body is checked against the published `Build` schema (cloudbuild_requests.py) and refused as the API
refuses it: 400 INVALID_ARGUMENT naming the field, the problems kept in `refused`. Builds are QUEUED when created
and move on only when told (`finish`), unless the stand-in was given an executor (cloudbuild_steps.LocalBuilds):
then each build runs in a thread, QUEUED -> WORKING -> SUCCESS or FAILURE, as the real service does, and `on_status`
hears every status change (the Build resource, as Cloud Build publishes it to the `cloud-builds` topic).

A finished build has the shape of the real `Build` resource in tests/samples/cloudbuild/build.SUCCESS.json: the pushed
image named as Cloud Build names it (the build's `images` entry after substitution) and `results.buildStepOutputs`
as Cloud Build returns it: one base64 entry per step, in step order, empty but for what the `checkout` step wrote to
$BUILDER_OUTPUT/output (the commit it checked out).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from relaunch.emulated.cloudbuild_requests import build_problems, invalid_argument, named_enums, secrets_problem
from relaunch.emulated.cloudbuild_steps import LocalBuilds, StepFailed
from relaunch.emulated.loopback import Recorded, loopback_server, send_json

__all__ = ["FakeCloudBuild", "LocalBuilds", "base64_id", "secrets_problem", "serve", "step_outputs", "substitute"]

FINAL = frozenset({"SUCCESS", "FAILURE", "INTERNAL_ERROR", "TIMEOUT", "CANCELLED", "EXPIRED"})
_BUILDS = re.compile(r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)/builds(?:/(?P<id>[^/:]+))?$")
_TAG_FILTER = re.compile(r'^tags="(?P<tag>[^"]+)"$')
# Cloud Build's variables: $$ (a literal $), $NAME and ${NAME}.
_VARIABLE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Z_][A-Z0-9_]*)\}|(?P<bare>[A-Z_][A-Z0-9_]*))")


def substitute(text: str, values: dict[str, str]) -> str:
    """`text` with Cloud Build's substitutions applied, as ALLOW_LOOSE does (an unknown variable becomes "")."""

    def value(match: re.Match[str]) -> str:
        return "$" if match["escaped"] else values.get(match["braced"] or match["bare"], "")

    return _VARIABLE.sub(value, text)


@dataclass
class FakeCloudBuild:
    """Builds by id, the requests received, the bodies refused, and scripted HTTP errors (served before anything)."""

    url: str = ""
    builds: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    refused: list[list[str]] = field(default_factory=list)  # per refused CreateBuild, its problems
    errors: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    executor: LocalBuilds | None = None  # None: builds wait for `finish`
    on_status: Callable[[dict[str, Any]], None] | None = None
    hook_errors: list[str] = field(default_factory=list)  # what on_status raised
    _running: list[threading.Thread] = field(default_factory=list)

    def finish(
        self, build_id: str, status: str, digest: str = "", detail: str = "", resolved_sha: str | None = None
    ) -> dict[str, Any]:
        """Move a build to `status`; SUCCESS adds the results: this build's image with `digest`, and step outputs.

        `resolved_sha` is what the checkout step outputs (the commit its ref resolved to); by default the build's
        `_SHA` substitution, which is empty for a build of a ref: say what the ref resolves to.
        """
        with self.lock:
            build = copy.deepcopy(self.builds[build_id])
            if status == "WORKING":
                build.setdefault("startTime", _now())
            elif status in FINAL:
                build.setdefault("startTime", _now())
                build["finishTime"] = _now()
            if status == "SUCCESS":
                output = build["substitutions"].get("_SHA", "") if resolved_sha is None else resolved_sha
                build["results"] = _results(build, digest, output)
            build.update(status=status, statusDetail=detail)
            self.builds[build_id] = build
        self._tell(build)
        return build

    def wait(self, build_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """The build once it is final (an executed build finishes on its own); TimeoutError if it does not."""
        deadline = time.monotonic() + timeout
        while (build := self.builds[build_id])["status"] not in FINAL:
            if time.monotonic() > deadline:
                raise TimeoutError(f"build {build_id} still {build['status']} after {timeout}s")
            time.sleep(0.02)
        return build

    def image_folder(self, image_uri: str) -> Path:
        """The folder a built image ("name@sha256:<hex>", as relaunch records it) holds (an executor is required)."""
        if self.executor is None:
            raise ValueError("this Cloud Build stand-in runs no builds (no executor), so it has no images")
        return self.executor.image_folder(image_uri)

    def close(self) -> None:
        """Wait for the builds still running (their git commands are bounded by a timeout)."""
        for thread in list(self._running):
            thread.join()

    def paths(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests]

    def handle(self, method: str, raw_path: str, body: bytes) -> tuple[int, Any]:
        parts = urlsplit(raw_path)
        payload = json.loads(body) if body else None
        with self.lock:
            self.requests.append(Recorded(method, parts.path, parse_qs(parts.query), payload))
            if self.errors:
                status = self.errors.pop(0)
                return status, {"error": {"code": status, "message": "scripted failure", "status": "UNAVAILABLE"}}
        match = _BUILDS.match(parts.path)
        if not match:
            return 404, {"error": {"code": 404, "message": f"no route {parts.path}", "status": "NOT_FOUND"}}
        if method == "POST" and match["id"] is None:
            found = build_problems(payload)
            if found or not isinstance(payload, dict):  # build_problems says why a body is no object
                with self.lock:
                    self.refused.append(found)
                return 400, invalid_argument(found)
            return 200, self._create(match["project"], match["region"], named_enums(payload))
        if method == "GET" and match["id"]:
            stored = self.builds.get(match["id"])
            if stored is None:
                return 404, {"error": {"code": 404, "message": "build not found", "status": "NOT_FOUND"}}
            return 200, stored
        if method == "GET":
            return 200, {"builds": self._list(parse_qs(parts.query).get("filter", [""])[0])}
        return 405, {"error": {"code": 405, "message": "method not allowed", "status": "UNIMPLEMENTED"}}

    def _create(self, project: str, region: str, build: dict[str, Any]) -> dict[str, Any]:
        build_id = str(uuid.uuid4())
        stored = {
            **build,
            "id": build_id,
            "name": f"projects/{project}/locations/{region}/builds/{build_id}",
            "projectId": project,
            "status": "QUEUED",
            "createTime": _now(),
            "logUrl": f"https://console.cloud.google.com/cloud-build/builds;region={region}/{build_id}?project=1",
        }
        with self.lock:
            self.builds[build_id] = stored
        self._tell(stored)
        if self.executor is not None:
            thread = threading.Thread(target=self._execute, args=(build_id,), name=f"cloudbuild-{build_id[:8]}")
            self._running.append(thread)
            thread.start()
        metadata = {"@type": "type.googleapis.com/google.devtools.cloudbuild.v1.BuildOperationMetadata"}
        operation_id = base64_id(build_id)
        return {
            "name": f"projects/{project}/locations/{region}/operations/{operation_id}",
            "metadata": {**metadata, "build": stored},
            "done": False,
        }

    def _execute(self, build_id: str) -> None:
        """Run the build's steps (the executor), then finish it as Cloud Build does."""
        assert self.executor is not None
        build = self.finish(build_id, "WORKING")
        try:
            built = self.executor.run(build)
        except StepFailed as failed:
            self._fail(build_id, failed)
        except Exception as exc:  # noqa: BLE001 (the stand-in's own fault: what Cloud Build calls INTERNAL_ERROR)
            self.finish(build_id, "INTERNAL_ERROR", detail=f"the Cloud Build stand-in failed: {exc!r}"[:500])
        else:
            self.finish(build_id, "SUCCESS", digest=built.digest, resolved_sha=built.sha)

    def _fail(self, build_id: str, failed: StepFailed) -> None:
        steps = self.builds[build_id].get("steps") or [{}]
        name = steps[min(failed.index, len(steps) - 1)].get("name", "")
        detail = (
            f'Build step failure: build step {failed.index} "{name}" failed: step exited with '
            f"non-zero status: {failed.code}: {failed.said}"
        )
        with self.lock:
            self.builds[build_id]["failureInfo"] = {"type": "USER_BUILD_STEP", "detail": detail}
        self.finish(build_id, "FAILURE", detail=detail)

    def _tell(self, build: dict[str, Any]) -> None:
        """Tell `on_status`; its failure is kept, never the build's (Cloud Build's messages are not its steps)."""
        if self.on_status is None:
            return
        try:
            self.on_status(copy.deepcopy(build))
        except Exception as exc:  # noqa: BLE001 (kept for the test or demo to report)
            self.hook_errors.append(f"on_status({build['id']}, {build['status']}): {exc!r}")

    def _list(self, text_filter: str) -> list[dict[str, Any]]:
        match = _TAG_FILTER.match(text_filter)
        with self.lock:
            builds = list(self.builds.values())
        if text_filter and not match:
            return builds  # a filter we do not understand: answer like a lax server, with everything
        return [b for b in builds if not match or match["tag"] in b.get("tags", [])]


def _results(build: dict[str, Any], digest: str, checked_out: str) -> dict[str, Any]:
    """results of a successful build: the image pushed (as named after substitution) and each step's output."""
    values = {**build.get("substitutions", {}), "PROJECT_ID": build["projectId"], "BUILD_ID": build["id"]}
    timing = {"startTime": build["finishTime"], "endTime": build["finishTime"]}
    pushed = {"name": substitute(build["images"][0], values), "digest": digest, "pushTiming": timing}
    steps = build.get("steps", [])
    builder_images = ["sha256:" + hashlib.sha256(s.get("name", "").encode()).hexdigest() for s in steps]
    return {
        "images": [pushed],
        "buildStepImages": builder_images,
        "buildStepOutputs": step_outputs(steps, {"checkout": checked_out}),
    }


def step_outputs(steps: list[dict[str, Any]], written: dict[str, str]) -> list[str]:
    """results.buildStepOutputs: per step, in order, base64 of what it wrote to $BUILDER_OUTPUT/output."""
    return [base64.b64encode(written.get(step.get("id", ""), "").encode()).decode() for step in steps]


def base64_id(text: str) -> str:
    return text.replace("-", "")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _handler(fake: FakeCloudBuild) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            send_json(self, *fake.handle(self.command, self.path, body))

        do_GET = do_POST = _serve  # noqa: N815 (http.server's naming)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serve(
    executor: LocalBuilds | None = None, on_status: Callable[[dict[str, Any]], None] | None = None
) -> Iterator[FakeCloudBuild]:
    """Run a FakeCloudBuild on a free loopback port for the block; builds still running are waited for after it."""
    fake = FakeCloudBuild(executor=executor, on_status=on_status)
    with loopback_server(_handler(fake)) as url:
        fake.url = url
        try:
            yield fake
        finally:
            fake.close()
