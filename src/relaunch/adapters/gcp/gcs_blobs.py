"""Blob store for gs:// URIs on Cloud Storage (google-cloud-storage, imported on first use).

No call retries client-side: a TransientError makes the platform redeliver the command instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from relaunch.domain.ports import TransientError

_CALL_TIMEOUT_S = 30.0
_MAX_OBJECTS = 10_000  # a model folder is a few files; a job that wrote a million would make registration crawl
_MAX_REWRITE_CALLS = 1_000
MANIFEST_SUFFIX = ".manifest.json"  # beside the copied folder, never in it: serving containers load the whole folder


def split_uri(uri: str) -> tuple[str, str]:
    """(bucket, object path) of gs://bucket/path; ValueError for anything else."""
    if not uri.startswith("gs://"):
        raise ValueError(f"uri: expected a gs:// URI, got {uri!r}")
    bucket, _, path = uri.removeprefix("gs://").partition("/")
    if not bucket or not path:
        raise ValueError(f"uri: expected gs://bucket/object, got {uri!r}")
    return bucket, path


class GcsBlobStore:
    """A `BlobStore` on gs:// URIs, which also puts local folders into Cloud Storage (W&B fetches land there)."""

    def __init__(
        self, *, project: str | None = None, api_endpoint: str | None = None, credentials: Any | None = None
    ) -> None:
        self.project = project
        self._api_endpoint = api_endpoint
        self._credentials = credentials
        self._client: Any | None = None

    def __repr__(self) -> str:
        return f"GcsBlobStore(project={self.project!r})"

    @property
    def client(self) -> Any:
        if self._client is None:
            from google.cloud.storage import Client

            options = {"api_endpoint": self._api_endpoint} if self._api_endpoint else None
            # Reads need no project; "<none>" (what storage's anonymous client uses) avoids a project lookup.
            project = self.project or "<none>"
            self._client = Client(project=project, credentials=self._credentials, client_options=options)
        return self._client

    def read_text(self, uri: str) -> str:
        """The object's text; FileNotFoundError if it does not exist, TransientError if GCS is unavailable."""
        bucket, path = split_uri(uri)
        blob = self.client.bucket(bucket).blob(path)
        with _mapped(f"GCS read of {uri}", missing=FileNotFoundError):
            text: str = blob.download_as_text(encoding="utf-8", retry=None, timeout=_CALL_TIMEOUT_S)
        return text

    def join(self, base: str, *parts: str) -> str:
        """gs://bucket/a + (b, c) -> gs://bucket/a/b/c."""
        if not base.startswith("gs://") or not base.removeprefix("gs://").strip("/"):
            raise ValueError(f"base: expected a gs:// URI, got {base!r}")
        pieces = [base.rstrip("/"), *(p.strip("/") for p in parts if p.strip("/"))]
        return "/".join(pieces)

    def stage_read_only(self, src: str, dest: str) -> str:
        """`src` itself: the training service account may only read the registry's objects (deploy sets the IAM)."""
        split_uri(src.rstrip("/"))  # a gs:// URI, or ValueError naming it
        return src

    def copy_tree(self, src: str, dest: str) -> str:
        """Copy the objects under folder `src` to folder `dest` once; the manifest beside `dest` marks it complete.

        A retry of an interrupted copy copies only what is missing; a retry of a complete one reads nothing of `src`
        (which training jobs may write) and copies nothing. ValueError for a refusal or a folder that is no model.
        """
        src_bucket, src_prefix = _folder(src, "src")
        dest_bucket, dest_prefix = _folder(dest, "dest")
        target = self.client.bucket(dest_bucket)
        manifest = target.blob(dest_prefix.rstrip("/") + MANIFEST_SUFFIX)
        with _mapped(f"GCS copy of {src} to {dest}"):
            if manifest.exists(retry=None, timeout=_CALL_TIMEOUT_S):
                return dest.rstrip("/")
            sources = self._listed(src_bucket, src_prefix, src)
            if not sources:
                raise ValueError(f"src: no model files under {src}")
            present = {rel: (b.size, b.crc32c) for rel, b in self._listed(dest_bucket, dest_prefix, dest).items()}
            for rel, blob in sources.items():
                if present.get(rel) != (blob.size, blob.crc32c):
                    _rewrite(blob, target.blob(dest_prefix + rel))
            _write_manifest(manifest, src, sources)
        return dest.rstrip("/")

    def put_tree(self, folder: Path, dest: str) -> None:
        """Make gs:// folder `dest` hold exactly the files under local `folder`: upload what differs, delete the rest.

        Files are compared by size and MD5, so a retry uploads only what is missing or changed, and a redelivered fetch
        of the same version writes nothing. ValueError for a refusal, TransientError when Cloud Storage is unavailable.
        """
        bucket, prefix = _folder(dest, "dest")
        files = {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}
        target = self.client.bucket(bucket)
        with _mapped(f"GCS upload to {dest}"):
            present = self._listed(bucket, prefix, dest)
            for rel, path in files.items():
                blob = present.get(rel)
                if blob is None or (blob.size, blob.md5_hash) != (path.stat().st_size, _md5(path)):
                    target.blob(prefix + rel).upload_from_filename(str(path), retry=None, timeout=_CALL_TIMEOUT_S)
            for rel in sorted(set(present) - set(files)):  # an earlier fetch's file must not be evaluated with these
                present[rel].delete(retry=None, timeout=_CALL_TIMEOUT_S)

    def _listed(self, bucket: str, prefix: str, uri: str) -> dict[str, Any]:
        """The objects under `prefix` by their name below it; ValueError for a name no model file may have."""
        found: dict[str, Any] = {}
        for blob in self.client.list_blobs(bucket, prefix=prefix, retry=None, timeout=_CALL_TIMEOUT_S):
            rel = blob.name[len(prefix) :]
            if not rel or (rel.endswith("/") and not blob.size):  # a folder placeholder (the console makes them)
                continue
            _check_relative(rel, uri)
            if len(found) >= _MAX_OBJECTS:
                raise ValueError(f"src: {uri} holds more than {_MAX_OBJECTS} objects")
            found[rel] = blob
        return found


def _folder(uri: str, name: str) -> tuple[str, str]:
    """(bucket, object prefix ending in /) of a gs:// folder; ValueError naming the argument."""
    try:
        bucket, path = split_uri(uri.rstrip("/"))
    except ValueError:
        raise ValueError(f"{name}: expected a gs://bucket/folder URI, got {uri!r}") from None
    return bucket, path + "/"


def _check_relative(rel: str, uri: str) -> None:
    """Refuse object names that a download to disk would resolve elsewhere, or that a terminal would obey."""
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts) or any(ord(c) < 0x20 or ord(c) == 0x7F for c in rel):
        raise ValueError(f"src: object {rel!r} under {uri} has a name no model file may have")


def _md5(path: Path) -> str:
    """A file's MD5 as Cloud Storage reports an object's (base64): a checksum to skip unchanged files, not security."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()


def _rewrite(source: Any, target: Any) -> None:
    """Copy one object (the listed generation: the client pins it) with as many rewrite calls as the service asks."""
    token = None
    for _ in range(_MAX_REWRITE_CALLS):
        token, _, _ = target.rewrite(source, token=token, retry=None, timeout=_CALL_TIMEOUT_S)
        if token is None:
            return
    raise TransientError(f"GCS rewrite of {source.name} not done after {_MAX_REWRITE_CALLS} calls")


def _write_manifest(manifest: Any, src: str, sources: dict[str, Any]) -> None:
    """Mark the copy complete (once: a concurrent copy that wrote it first is just as complete)."""
    from google.api_core import exceptions as gexc

    objects = {rel: {"generation": b.generation, "size": b.size, "crc32c": b.crc32c} for rel, b in sources.items()}
    text = json.dumps({"source": src, "objects": objects}, sort_keys=True)
    try:
        manifest.upload_from_string(
            text, content_type="application/json", if_generation_match=0, retry=None, timeout=_CALL_TIMEOUT_S
        )
    except gexc.PreconditionFailed:
        pass


@contextmanager
def _mapped(action: str, missing: type[Exception] = ValueError) -> Iterator[None]:
    """Cloud Storage's errors as the ports name them: missing/refused, or transient (429, 5xx, no connection)."""
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    try:
        yield
    except gexc.NotFound as exc:
        raise missing(f"{action}: {exc.code} {exc.message}") from exc
    except (gexc.TooManyRequests, gexc.ServerError) as exc:
        raise TransientError(f"{action}: {exc.code} {exc.message}") from exc
    except gexc.GoogleAPICallError as exc:
        raise ValueError(f"{action} refused: {exc.code} {exc.message}") from exc
    except (OSError, auth_exc.TransportError) as exc:  # no connection: "missing" must mean "no such object"
        raise TransientError(f"{action}: {exc}") from exc
