"""A small Cloud Storage JSON API on loopback, for GcsBlobStore driven by the real google-cloud-storage client.

It answers what the client sends for the calls the adapter makes (request shapes from Google's JSON API reference):
objects.get (metadata and `alt=media` download), objects.list (prefix, pageToken; `storage#objects` pages),
objects.rewrite (`.../o/SRC/rewriteTo/b/BUCKET/o/DEST`, sourceGeneration, ifGenerationMatch, rewriteToken;
`storage#rewriteResponse`) and objects.insert (multipart upload, ifGenerationMatch). Errors are Google JSON errors.
google-cloud-storage 3.x also GETs each bucket's metadata from a background thread (for its telemetry spans); those
requests are answered apart, so they neither take a scripted error nor show among `paths`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import google_crc32c

from tests.loopback import Recorded, loopback_server

Answer = tuple[int, bytes, str]  # status, body, content type
JSON = "application/json"


def _error(code: int, message: str) -> Answer:
    body = {"error": {"code": code, "message": message, "errors": [{"message": message}]}}
    return code, json.dumps(body).encode(), JSON


def _json(value: Any) -> Answer:
    return 200, json.dumps(value).encode(), JSON


@dataclass
class FakeGcs:
    """Objects by (bucket, name), each with a generation; `fail[op]` scripts answers per operation (None: answer).

    Operations: download, get, list, rewrite, upload. `statuses` fails the next requests of any operation.
    """

    url: str = ""
    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)
    generations: dict[tuple[str, str], int] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    fail: dict[str, list[int | None]] = field(default_factory=dict)
    bucket_lookups: list[str] = field(default_factory=list)
    page_size: int = 2  # small, so listings page
    rewrite_calls_per_object: int = 2  # the first call answers done=false with a token, as a large object would
    _next_generation: int = 1000

    def put(self, bucket: str, name: str, data: bytes) -> None:
        """Write an object as a client would: a new generation."""
        self.objects[(bucket, name)] = data
        self.generations[(bucket, name)] = self._bump()

    def ops(self, op: str) -> list[Recorded]:
        """The recorded requests of one operation."""
        return [r for r in self.requests if _operation(r.method, r.path) == op]

    def answer(self, method: str, raw_path: str, headers: Any, body: bytes) -> Answer:
        split = urlsplit(raw_path)
        rest = split.path.removeprefix("/storage/v1/b/")
        if method == "GET" and split.path.startswith("/storage/v1/b/") and "/" not in rest:
            self.bucket_lookups.append(rest)
            return _json({"kind": "storage#bucket", "name": rest, "location": "US-CENTRAL1"})
        op, query = _operation(method, split.path), parse_qs(split.query)
        self.paths.append(raw_path)
        self.requests.append(Recorded(method, split.path, query, _decoded(headers, body)))
        if self.statuses:
            return _error(self.statuses.pop(0), "Backend Error")
        scripted = self.fail.get(op)
        if scripted and (code := scripted.pop(0)) is not None:
            return _error(code, "Backend Error")
        handlers = {"download": self._download, "get": self._get, "list": self._list, "rewrite": self._rewrite}
        if op == "upload":
            return self._upload(split.path, query, headers, body)
        if op not in handlers:
            return _error(400, f"unsupported request {method} {raw_path}")
        return handlers[op](split.path, query)

    # -- operations ------------------------------------------------------------------------------------------

    def _download(self, path: str, query: dict[str, list[str]]) -> Answer:
        bucket, name = _bucket_object(path.removeprefix("/download"))
        if query.get("alt") != ["media"]:
            return _error(400, "download without alt=media")
        data = self.objects.get((bucket, name))
        return (200, data, "application/octet-stream") if data is not None else _error(404, f"No such object: {name}")

    def _get(self, path: str, query: dict[str, list[str]]) -> Answer:
        bucket, name = _bucket_object(path)
        if (bucket, name) not in self.objects:
            return _error(404, f"No such object: {bucket}/{name}")
        return _json(self.resource(bucket, name))

    def _list(self, path: str, query: dict[str, list[str]]) -> Answer:
        bucket = path.removeprefix("/storage/v1/b/").removesuffix("/o")
        prefix = query.get("prefix", [""])[0]
        names = sorted(n for b, n in self.objects if b == bucket and n.startswith(prefix))
        start = int(query.get("pageToken", ["0"])[0])
        page = names[start : start + self.page_size]
        listing: dict[str, Any] = {"kind": "storage#objects", "items": [self.resource(bucket, n) for n in page]}
        if start + self.page_size < len(names):
            listing["nextPageToken"] = str(start + self.page_size)
        return _json(listing)

    def _rewrite(self, path: str, query: dict[str, list[str]]) -> Answer:
        source_path, _, dest_path = path.partition("/rewriteTo")
        (src_bucket, src_name), (dest_bucket, dest_name) = _bucket_object(source_path), _bucket_object(dest_path)
        wanted = query.get("sourceGeneration", [None])[0]
        exists = (src_bucket, src_name) in self.objects
        if not exists or (wanted and int(wanted) != self._generation(src_bucket, src_name)):  # no such generation
            return _error(404, f"No such object: {src_bucket}/{src_name}")
        if_match = query.get("ifGenerationMatch", [None])[0]
        if if_match is not None and int(if_match) != self.generations.get((dest_bucket, dest_name), 0):
            return _error(412, "At least one of the pre-conditions you specified did not hold.")
        size = len(self.objects[(src_bucket, src_name)])
        calls = int(query.get("rewriteToken", ["0"])[0]) + 1
        progress = {"kind": "storage#rewriteResponse", "objectSize": str(size)}
        if calls < self.rewrite_calls_per_object:
            return _json({**progress, "totalBytesRewritten": "0", "done": False, "rewriteToken": str(calls)})
        self.put(dest_bucket, dest_name, self.objects[(src_bucket, src_name)])
        resource = self.resource(dest_bucket, dest_name)
        return _json({**progress, "totalBytesRewritten": str(size), "done": True, "resource": resource})

    def _upload(self, path: str, query: dict[str, list[str]], headers: Any, body: bytes) -> Answer:
        if query.get("uploadType") != ["multipart"]:
            return _error(400, "only multipart uploads are supported here")
        metadata, data = _multipart(headers.get("Content-Type", ""), body)
        bucket = path.removeprefix("/upload/storage/v1/b/").removesuffix("/o")
        name = metadata["name"]
        if_match = query.get("ifGenerationMatch", [None])[0]
        if if_match is not None and int(if_match) != self.generations.get((bucket, name), 0):
            return _error(412, "At least one of the pre-conditions you specified did not hold.")
        self.put(bucket, name, data)
        return _json(self.resource(bucket, name))

    def resource(self, bucket: str, name: str) -> dict[str, Any]:
        """The object resource the JSON API answers (sizes and generations are strings, hashes base64)."""
        data = self.objects[(bucket, name)]
        crc = google_crc32c.value(data).to_bytes(4, "big")
        return {
            "kind": "storage#object",
            "bucket": bucket,
            "name": name,
            "generation": str(self._generation(bucket, name)),
            "metageneration": "1",
            "size": str(len(data)),
            "crc32c": base64.b64encode(crc).decode(),
            "md5Hash": base64.b64encode(hashlib.md5(data).digest()).decode(),
        }

    def _generation(self, bucket: str, name: str) -> int:
        if (bucket, name) not in self.generations:
            self.generations[(bucket, name)] = self._bump()
        return self.generations[(bucket, name)]

    def _bump(self) -> int:
        self._next_generation += 1
        return self._next_generation


def _operation(method: str, path: str) -> str:
    if path.startswith("/download/"):
        return "download"
    if path.startswith("/upload/"):
        return "upload"
    if method == "POST" and "/rewriteTo/" in path:
        return "rewrite"
    if method == "GET" and path.endswith("/o"):
        return "list"
    return "get" if method == "GET" and "/o/" in path else "other"


def _bucket_object(path: str) -> tuple[str, str]:
    """(bucket, name) of [/storage/v1]/b/BUCKET/o/NAME, where NAME is percent-encoded (a / is %2F)."""
    bucket, _, name = path.removeprefix("/storage/v1").removeprefix("/b/").partition("/o/")
    return bucket, unquote(name)


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, Any], bytes]:
    """(metadata, media) of a multipart/related upload: a JSON part, then the object's bytes."""
    boundary = content_type.partition("boundary=")[2].strip('"').encode()
    parts = body.split(b"--" + boundary)
    metadata_part, media_part = parts[1], parts[2]
    metadata = json.loads(metadata_part.partition(b"\r\n\r\n")[2].strip())
    return metadata, media_part.partition(b"\r\n\r\n")[2].removesuffix(b"\r\n")


def _decoded(headers: Any, body: bytes) -> Any:
    if not body:
        return None
    if headers.get("Content-Type", "").startswith(JSON):
        return json.loads(body)
    return body


@contextmanager
def gcs_server() -> Iterator[FakeGcs]:
    """A FakeGcs on a free loopback port for the block; stopped after."""
    fake = FakeGcs()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            code, data, content_type = fake.answer(method, self.path, self.headers, body)
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def log_message(self, format: str, *args: object) -> None:
            pass

    with loopback_server(Handler) as url:
        fake.url = url
        yield fake
