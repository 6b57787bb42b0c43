"""A local stand-in for the Cloud Build REST API (v1): records every request and keeps builds in memory.

Finished builds are rendered from the real `Build` resource in tests/samples/cloudbuild/build.SUCCESS.json, with
the pushed image named as Cloud Build names it (the build's `images` entry after substitution) and
`results.buildStepOutputs` as Cloud Build returns it: one base64 entry per step, in step order, empty but for what
the `checkout` step wrote to $BUILDER_OUTPUT/output (the commit it checked out).
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.loopback import Recorded, loopback_server

SAMPLE = Path(__file__).parent / "samples" / "cloudbuild" / "build.SUCCESS.json"
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
    """Builds by id, the requests received, and scripted HTTP errors (served before anything else)."""

    url: str = ""
    builds: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def finish(
        self, build_id: str, status: str, digest: str = "", detail: str = "", resolved_sha: str | None = None
    ) -> dict[str, Any]:
        """Move a build to `status`; SUCCESS renders the sample build with this build's image, digest and outputs.

        `resolved_sha` is what the checkout step outputs (the commit its ref resolved to); by default the build's
        `_SHA` substitution, which is empty for a build of a ref: say what the ref resolves to.
        """
        with self.lock:
            build = self.builds[build_id]
            if status == "SUCCESS":
                sample = json.loads(SAMPLE.read_text())
                pushed = copy.deepcopy(sample["results"]["images"][0])
                values = {**build.get("substitutions", {}), "PROJECT_ID": build["projectId"], "BUILD_ID": build_id}
                pushed.update(name=substitute(build["images"][0], values), digest=digest)
                sample["results"]["images"] = [pushed]
                output = values.get("_SHA", "") if resolved_sha is None else resolved_sha
                sample["results"]["buildStepOutputs"] = step_outputs(build["steps"], {"checkout": output})
                for key in ("steps", "images", "substitutions", "tags", "options", "name", "id", "logUrl"):
                    sample[key] = build[key]
                build = sample
            build.update(status=status, statusDetail=detail)
            self.builds[build_id] = build
            return build

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
            assert payload is not None, "a build is created from a JSON body"
            return 200, self._create(match["project"], match["region"], payload)
        if method == "GET" and match["id"]:
            build = self.builds.get(match["id"])
            if build is None:
                return 404, {"error": {"code": 404, "message": "build not found", "status": "NOT_FOUND"}}
            return 200, build
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
            "createTime": "2026-01-01T00:00:00Z",
            "logUrl": f"https://console.cloud.google.com/cloud-build/builds;region={region}/{build_id}?project=1",
        }
        with self.lock:
            self.builds[build_id] = stored
        metadata = {"@type": "type.googleapis.com/google.devtools.cloudbuild.v1.BuildOperationMetadata"}
        operation_id = base64_id(build_id)
        return {
            "name": f"projects/{project}/locations/{region}/operations/{operation_id}",
            "metadata": {**metadata, "build": stored},
            "done": False,
        }

    def _list(self, text_filter: str) -> list[dict[str, Any]]:
        match = _TAG_FILTER.match(text_filter)
        with self.lock:
            builds = list(self.builds.values())
        if text_filter and not match:
            return builds  # a filter we do not understand: answer like a lax server, with everything
        return [b for b in builds if not match or match["tag"] in b.get("tags", [])]


def step_outputs(steps: list[dict[str, Any]], written: dict[str, str]) -> list[str]:
    """results.buildStepOutputs: per step, in order, base64 of what it wrote to $BUILDER_OUTPUT/output."""
    return [base64.b64encode(written.get(step.get("id", ""), "").encode()).decode() for step in steps]


def base64_id(text: str) -> str:
    return text.replace("-", "")


def _handler(fake: FakeCloudBuild) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            status, payload = fake.handle(self.command, self.path, body)
            out = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = _serve  # noqa: N815 (http.server's naming)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serve() -> Iterator[FakeCloudBuild]:
    """Run a FakeCloudBuild on a free loopback port for the duration of the block."""
    fake = FakeCloudBuild()
    with loopback_server(_handler(fake)) as url:
        fake.url = url
        yield fake
