"""The Cloud Storage JSON API's wire: which operation a request is, its parts, its checks, and the answers' shapes."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from relaunch.emulated.discovery_schema import document, problems

JSON = "application/json"


@dataclass(frozen=True)
class Reply:
    """One answer: status, body, content type and any further headers."""

    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)


def error(code: int, message: str, reason: str = "backendError", status: str | None = None) -> Reply:
    """A Google JSON error, as the JSON API answers one."""
    details: dict[str, Any] = {"code": code, "message": message, "errors": [{"message": message, "reason": reason}]}
    if status:
        details["status"] = status
    return Reply(code, json.dumps({"error": details}).encode())


def invalid(found: list[str]) -> Reply:
    """The 400 a request body the discovery document does not allow gets, naming each field."""
    return error(400, "Invalid argument: " + "; ".join(found), reason="invalid", status="INVALID_ARGUMENT")


def reply(value: Any) -> Reply:
    """A 200 with a JSON body."""
    return Reply(200, json.dumps(value).encode())


def object_problems(resource: Any) -> list[str]:
    """How an object resource a client sent breaks the `Object` schema of the storage v1 discovery document."""
    return problems(document("storage.v1.Object"), "Object", resource)


def checksum_problems(resource: dict[str, Any], data: bytes) -> list[str]:
    """The 400 lines for a sent md5Hash or crc32c the uploaded bytes do not have (the service checks both)."""
    actual = {
        "md5Hash": base64.b64encode(hashlib.md5(data).digest()).decode(),
        "crc32c": crc32c(data),
    }
    return [
        f"Object.{name}: provided {resource[name]!r} doesn't match calculated {value!r}"
        for name, value in actual.items()
        if isinstance(resource.get(name), str) and resource[name] != value
    ]


def precondition_failed(query: dict[str, list[str]], current: dict[str, Any] | None) -> bool:
    """Whether ifGenerationMatch / ifMetagenerationMatch (and their NotMatch) rule the request out (0: no object)."""
    generation = int(current["generation"]) if current else 0
    metageneration = int(current["metageneration"]) if current else 0
    checks = {
        "ifGenerationMatch": lambda v: generation == v,
        "ifGenerationNotMatch": lambda v: generation != v,
        "ifMetagenerationMatch": lambda v: metageneration == v,
        "ifMetagenerationNotMatch": lambda v: metageneration != v,
    }
    return any(name in query and not check(int(query[name][0])) for name, check in checks.items())


def operation(method: str, path: str, query: dict[str, list[str]]) -> str:
    """Which JSON API operation a request is (download, get, list, rewrite, copy, upload, delete, patch or other)."""
    if path.startswith("/download/") or (method == "GET" and "/o/" in path and query.get("alt") == ["media"]):
        return "download"
    if path.startswith("/upload/"):
        return "upload"
    if method == "POST" and "/rewriteTo/" in path:
        return "rewrite"
    if method == "POST" and "/copyTo/" in path:
        return "copy"
    if method == "GET" and path.endswith("/o"):
        return "list"
    single = {"GET": "get", "DELETE": "delete", "PATCH": "patch"}
    return single.get(method, "other") if "/o/" in path else "other"


def bucket_object(path: str) -> tuple[str, str]:
    """(bucket, name) of [/download][/storage/v1]/b/BUCKET/o/NAME, where NAME is percent-encoded (a / is %2F)."""
    bare = path.removeprefix("/download").removeprefix("/storage/v1")
    bucket, _, name = bare.removeprefix("/b/").partition("/o/")
    return bucket, unquote(name)


def multipart(content_type: str, body: bytes) -> tuple[Any, bytes, str | None]:
    """(metadata, media, the media part's Content-Type) of a multipart/related upload: a JSON part, then the bytes."""
    boundary = content_type.partition("boundary=")[2].strip('"').encode()
    parts = body.split(b"--" + boundary)
    if not boundary or len(parts) < 3:
        raise ValueError("a multipart upload needs a JSON part and a media part")
    metadata_part, media_part = parts[1], parts[2]
    metadata = json.loads(metadata_part.partition(b"\r\n\r\n")[2].strip())
    head, _, media = media_part.partition(b"\r\n\r\n")
    media_type: str | None = None
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-type":
            media_type = value.strip().decode()
    return metadata, media.removesuffix(b"\r\n"), media_type


def decoded(content_type: str, body: bytes) -> Any:
    """A recorded request body: parsed JSON, the raw bytes, or None when there is none."""
    if not body:
        return None
    return json.loads(body) if content_type.startswith(JSON) else body


def download_headers(resource: dict[str, Any]) -> dict[str, str]:
    """What the service sends with an object's bytes (the client checks the hashes it names)."""
    return {
        "x-goog-hash": f"crc32c={resource['crc32c']},md5={resource['md5Hash']}",
        "x-goog-generation": resource["generation"],
        "x-goog-metageneration": resource["metageneration"],
        "x-goog-stored-content-length": resource["size"],
        "x-goog-stored-content-encoding": resource.get("contentEncoding", "identity"),
        "x-goog-storage-class": resource["storageClass"],
    }


def _castagnoli() -> list[int]:
    table = []
    for byte in range(256):
        value = byte
        for _ in range(8):
            value = (value >> 1) ^ 0x82F63B78 if value & 1 else value >> 1
        table.append(value)
    return table


_CRC32C = _castagnoli()


def crc32c(data: bytes) -> str:
    """The CRC32C (Castagnoli) of `data`, base64 of its four big-endian bytes, as the JSON API writes it.

    In Python rather than google-crc32c's C (about 5 MB/s): relaunch declares no dependency on that package.
    """
    value = 0xFFFFFFFF
    for byte in data:
        value = _CRC32C[(value ^ byte) & 0xFF] ^ (value >> 8)
    return base64.b64encode((value ^ 0xFFFFFFFF).to_bytes(4, "big")).decode()
