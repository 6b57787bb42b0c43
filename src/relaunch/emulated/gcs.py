"""A Cloud Storage JSON API on loopback, for the real google-cloud-storage client; its objects are files under a root.

It answers what the client sends (request shapes from Google's JSON API reference): objects.get (metadata, and
`alt=media` downloads with the x-goog-hash the client checks), objects.list (prefix, delimiter, pageToken;
`storage#objects` pages), objects.rewrite (`.../o/SRC/rewriteTo/b/BUCKET/o/DEST`, sourceGeneration, rewriteToken;
`storage#rewriteResponse`), objects.copy, objects.patch, objects.insert (media, multipart and resumable uploads) and
objects.delete, with the generation and metageneration preconditions. An object resource a client sends (upload
metadata, the copy, rewrite and patch bodies) is checked against the storage v1 discovery document's `Object` schema:
one it does not allow is refused as the service refuses a bad request (400 INVALID_ARGUMENT naming the field) and kept
in `refused`. Errors are Google JSON errors. gs://BUCKET/NAME is the file ROOT/BUCKET/NAME (see gcs_files.py).
google-cloud-storage 3.x also GETs each bucket's metadata from a background thread (for its telemetry spans); those
requests are answered apart, so they neither take a scripted error nor show among `paths`.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from relaunch.emulated.gcs_files import ObjectFiles
from relaunch.emulated.gcs_uploads import ResumableUploads, Session
from relaunch.emulated.gcs_wire import (
    Reply,
    bucket_object,
    checksum_problems,
    decoded,
    download_headers,
    error,
    invalid,
    multipart,
    object_problems,
    operation,
    precondition_failed,
    reply,
)
from relaunch.emulated.loopback import Recorded, loopback_server

Query = dict[str, list[str]]
_UNMET = error(412, "At least one of the pre-conditions you specified did not hold.", reason="conditionNotMet")


@dataclass
class FakeGcs:
    """The JSON API over the files under `root`; `fail[op]` scripts answers per operation (None: answer).

    Operations: download, get, list, rewrite, copy, upload, delete, patch. `statuses` fails the next requests of any
    operation. `objects` maps (bucket, name) to bytes: reading or writing it is reading or writing the files.
    """

    root: Path
    url: str = ""
    paths: list[str] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    fail: dict[str, list[int | None]] = field(default_factory=dict)
    bucket_lookups: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # what was wrong with each request refused as invalid
    page_size: int = 1000  # the service's default maxResults
    rewrite_calls_per_object: int = 1  # more: the first calls answer done=false with a token, as for a large object
    _uploads: ResumableUploads = field(default_factory=ResumableUploads)

    def __post_init__(self) -> None:
        self.objects = ObjectFiles(self.root)

    def put(self, bucket: str, name: str, data: bytes) -> None:
        """Write an object as a client would: a new generation."""
        self.objects[(bucket, name)] = data

    def resource(self, bucket: str, name: str) -> dict[str, Any]:
        """The object resource the JSON API answers (sizes and generations are strings, hashes base64)."""
        found = self.objects.resource((bucket, name))
        if found is None:
            raise KeyError((bucket, name))
        return found

    def ops(self, op: str) -> list[Recorded]:
        """The recorded requests of one operation."""
        return [r for r in self.requests if operation(r.method, r.path, r.query) == op]

    def answer(self, method: str, raw_path: str, headers: Any, body: bytes) -> Reply:
        """The reply to one request (what the HTTP handler sends)."""
        split = urlsplit(raw_path)
        rest = split.path.removeprefix("/storage/v1/b/")
        if method == "GET" and split.path.startswith("/storage/v1/b/") and "/" not in rest:
            self.bucket_lookups.append(rest)
            return reply({"kind": "storage#bucket", "name": rest, "location": "US-CENTRAL1"})
        query = parse_qs(split.query)
        op = operation(method, split.path, query)
        self.paths.append(raw_path)
        content_type = headers.get("Content-Type", "")
        self.requests.append(Recorded(method, split.path, query, decoded(content_type, body)))
        if self.statuses:
            return error(self.statuses.pop(0), "Backend Error")
        scripted = self.fail.get(op)
        if scripted and (code := scripted.pop(0)) is not None:
            return error(code, "Backend Error")
        try:
            return self._route(op, method, split.path, query, content_type, headers, body)
        except ValueError as e:  # a bucket name or body the service could not read
            return error(400, str(e), reason="invalid", status="INVALID_ARGUMENT")

    def _route(
        self, op: str, method: str, path: str, query: Query, content_type: str, headers: Any, body: bytes
    ) -> Reply:
        if op == "upload":
            return self._upload(method, path, query, content_type, headers, body)
        sent = json.loads(body) if body and content_type.startswith("application/json") else None
        if op in {"rewrite", "copy", "patch"} and (found := self._invalid(sent or {})):
            return found
        handlers: dict[str, Callable[[str, Query, Any], Reply]] = {
            "download": self._download,
            "get": self._get,
            "list": self._list,
            "rewrite": self._rewrite,
            "copy": self._copy,
            "delete": self._delete,
            "patch": self._patch,
        }
        handler = handlers.get(op)
        return handler(path, query, sent) if handler else error(400, f"unsupported request {method} {path}")

    def _invalid(self, resource: Any) -> Reply | None:
        found = object_problems(resource)
        if not found:
            return None
        self.refused += found
        return invalid(found)

    # -- reads ---------------------------------------------------------------------------------------------------

    def _target(self, path: str, query: Query) -> tuple[tuple[str, str], dict[str, Any]] | Reply:
        """The object a request names and its resource, or the 404 or 412 the request gets."""
        key = bucket_object(path)
        resource = self.objects.resource(key)
        if resource is None or query.get("generation", [resource["generation"]])[0] != resource["generation"]:
            return _missing(key)
        return _UNMET if precondition_failed(query, resource) else (key, resource)

    def _download(self, path: str, query: Query, sent: Any) -> Reply:
        found = self._target(path, query)
        if isinstance(found, Reply):
            return found
        key, resource = found
        return Reply(200, self.objects[key], resource["contentType"], download_headers(resource))

    def _get(self, path: str, query: Query, sent: Any) -> Reply:
        found = self._target(path, query)
        return found if isinstance(found, Reply) else reply(found[1])

    def _list(self, path: str, query: Query, sent: Any) -> Reply:
        bucket = path.removeprefix("/storage/v1/b/").removesuffix("/o")
        prefix, delimiter = query.get("prefix", [""])[0], query.get("delimiter", [""])[0]
        entries: dict[str, str | None] = {}  # name or folder prefix -> name (None: a prefix)
        for name in self.objects.names(bucket, prefix):
            rest = name[len(prefix) :]
            folder = prefix + rest.partition(delimiter)[0] + delimiter if delimiter and delimiter in rest else None
            entries.setdefault(folder or name, None if folder else name)
        size = min(self.page_size, int(query.get("maxResults", [self.page_size])[0]))
        start = int(query.get("pageToken", ["0"])[0])
        page = sorted(entries)[start : start + size]
        items = [self.objects.resource((bucket, n)) for n in page if entries[n] is not None]
        listing: dict[str, Any] = {"kind": "storage#objects", "items": [i for i in items if i]}
        if folders := [n for n in page if entries[n] is None]:
            listing["prefixes"] = folders
        if start + size < len(entries):
            listing["nextPageToken"] = str(start + size)
        return reply(listing)

    # -- writes --------------------------------------------------------------------------------------------------

    def _delete(self, path: str, query: Query, sent: Any) -> Reply:
        found = self._target(path, query)
        if isinstance(found, Reply):
            return found
        del self.objects[found[0]]
        return Reply(204)

    def _patch(self, path: str, query: Query, sent: Any) -> Reply:
        found = self._target(path, query)
        return found if isinstance(found, Reply) else reply(self.objects.patch(found[0], sent or {}))

    def _copy(self, path: str, query: Query, sent: Any) -> Reply:
        source_path, _, dest_path = path.partition("/copyTo")
        written = self._duplicate(bucket_object(source_path), bucket_object(dest_path), query, sent or {})
        return reply(written) if isinstance(written, dict) else written

    def _rewrite(self, path: str, query: Query, sent: Any) -> Reply:
        source_path, _, dest_path = path.partition("/rewriteTo")
        source, dest = bucket_object(source_path), bucket_object(dest_path)
        resource = self.objects.resource(source)
        if resource is None or query.get("sourceGeneration", [resource["generation"]])[0] != resource["generation"]:
            return _missing(source)
        if precondition_failed(query, self.objects.resource(dest)):
            return _UNMET
        calls = int(query.get("rewriteToken", ["0"])[0]) + 1
        progress = {"kind": "storage#rewriteResponse", "objectSize": resource["size"]}
        if calls < self.rewrite_calls_per_object:
            return reply({**progress, "totalBytesRewritten": "0", "done": False, "rewriteToken": str(calls)})
        written = self._duplicate(source, dest, {}, sent or {})
        if not isinstance(written, dict):
            return written
        return reply({**progress, "totalBytesRewritten": resource["size"], "done": True, "resource": written})

    def _duplicate(self, source: tuple[str, str], dest: tuple[str, str], query: Query, sent: dict[str, Any]) -> Any:
        """The destination's resource after copying source's bytes and fields (overridden by `sent`), or a Reply."""
        resource = self.objects.resource(source)
        if resource is None:
            return _missing(source)
        if precondition_failed(query, self.objects.resource(dest)):
            return _UNMET
        return self.objects.write(dest, self.objects[source], {**resource, **sent})

    def _upload(self, method: str, path: str, query: Query, content_type: str, headers: Any, body: bytes) -> Reply:
        bucket = path.removeprefix("/upload/storage/v1/b/").removesuffix("/o")
        kind = query.get("uploadType", [""])[0]
        if kind == "resumable" and method == "PUT":
            done = self._uploads.add(query.get("upload_id", [""])[0], headers.get("Content-Range", ""), body)
            return done if isinstance(done, Reply) else self._finish(done.key, done.metadata, done.query, done.data)
        if kind == "multipart":
            metadata, data, media_type = multipart(content_type, body)
        elif kind == "media":
            metadata, data, media_type = {}, body, content_type
        elif kind == "resumable":
            metadata, data, media_type = (json.loads(body) if body else {}), b"", headers.get("X-Upload-Content-Type")
        else:
            return error(400, f"unsupported uploadType {kind!r}", reason="invalid")
        if found := self._invalid(metadata):
            return found
        if media_type and isinstance(metadata, dict) and "contentType" not in metadata:  # as the service takes it
            metadata = {**metadata, "contentType": media_type}
        name = metadata.get("name") or query.get("name", [""])[0]
        if not name:
            return error(400, "Required: the object's name", reason="required", status="INVALID_ARGUMENT")
        if kind == "resumable":
            return self._uploads.open(self.url + path, Session((bucket, name), metadata, query))
        return self._finish((bucket, name), metadata, query, data)

    def _finish(self, key: tuple[str, str], metadata: dict[str, Any], query: Query, data: bytes) -> Reply:
        if found := checksum_problems(metadata, data):
            self.refused += found
            return error(400, "; ".join(found), reason="invalid", status="INVALID_ARGUMENT")
        if precondition_failed(query, self.objects.resource(key)):
            return _UNMET
        return reply(self.objects.write(key, data, metadata))


def _missing(key: tuple[str, str]) -> Reply:
    return error(404, f"No such object: {key[0]}/{key[1]}", reason="notFound")


def _handler(fake: FakeGcs) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer = fake.answer(self.command, self.path, self.headers, body)
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815 (http.server's naming)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


class GcsServer:
    """A FakeGcs on a free loopback port, its objects the files under `root` (None: a temporary folder, removed after).

    Use as a context manager: `with GcsServer(root) as gcs:` gives the FakeGcs (`gcs.url` is the API endpoint,
    `gcs.root` the folder a job may use as its /gcs/ mount); everything is stopped after the block.
    """

    def __init__(self, root: Path | None = None, **settings: Any) -> None:
        self.root = root
        self.settings = settings  # FakeGcs fields, e.g. page_size
        self._stack = ExitStack()

    def __enter__(self) -> FakeGcs:
        with ExitStack() as stack:
            root = self.root or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="relaunch-gcs-")))
            fake = FakeGcs(root=root, **self.settings)
            fake.url = stack.enter_context(loopback_server(_handler(fake)))
            self._stack = stack.pop_all()
        return fake

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


@contextmanager
def gcs_server() -> Iterator[FakeGcs]:
    """A FakeGcs on a temporary folder for the block, with small pages and two-call rewrites (so tests see both)."""
    with GcsServer(page_size=2, rewrite_calls_per_object=2) as fake:
        yield fake
