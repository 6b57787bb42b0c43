"""Cloud Storage objects as files: gs://BUCKET/NAME is ROOT/BUCKET/NAME, so ROOT serves as a job's /gcs/ mount.

Each object's metadata (generation, metageneration, hashes, times, the fields a client set) is kept in a sidecar,
ROOT/.gcs-meta/objects/BUCKET/NAME.json (no bucket name starts with a dot, so that folder is never a bucket). A
sidecar records the file's size, mtime and inode: a file written or replaced behind the API's back (a job writing
through the mount) is a new generation the next time anyone looks, as with Cloud Storage FUSE. An object whose name
is no file path (an empty, "." or ".." segment, or a file where a folder is) is kept in ROOT/.gcs-meta/apart/, as
gcsfuse cannot show it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import os
import re
import threading
import time
from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from relaunch.emulated.gcs_wire import crc32c

META = ".gcs-meta"
Key = tuple[str, str]  # (bucket, object name)
BUCKET_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,220}[a-z0-9])?$")  # Cloud Storage's rule, less the length floor
# What the service computes; a client's value for these is checked or ignored, never stored as sent.
COMPUTED = frozenset(
    "kind id selfLink mediaLink bucket name generation metageneration size md5Hash crc32c etag timeCreated updated "
    "timeDeleted timeStorageClassUpdated timeFinalized componentCount owner softDeleteTime hardDeleteTime "
    "restoreToken retentionExpirationTime".split()
)


class ObjectFiles(MutableMapping[Key, bytes]):
    """The objects under `root`, by (bucket, name): reading, writing and deleting them is the files' I/O."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self._last_generation = 0

    # -- the mapping: bytes by (bucket, name) --------------------------------------------------------------------

    def __getitem__(self, key: Key) -> bytes:
        path = self._data(key)
        if path is None:
            raise KeyError(key)
        return path.read_bytes()

    def __setitem__(self, key: Key, data: bytes) -> None:
        self.write(key, data, {})

    def __delitem__(self, key: Key) -> None:
        with self.lock:
            path = self._data(key)
            if path is None:
                raise KeyError(key)
            sidecar = self._sidecar(key)
            path.unlink()
            sidecar.unlink(missing_ok=True)
            self._prune(path.parent, self.root / key[0])
            self._prune(sidecar.parent, self.root / META / "objects" / key[0])

    def __iter__(self) -> Iterator[Key]:
        buckets = [p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        apart = self.root / META / "apart"
        if apart.is_dir():
            buckets += [p.name for p in apart.iterdir() if p.is_dir() and p.name not in buckets]
        for bucket in sorted(buckets):
            yield from ((bucket, name) for name in self.names(bucket, ""))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def names(self, bucket: str, prefix: str) -> list[str]:
        """The names of the bucket's objects starting with `prefix`, sorted (only the prefix's folder is read)."""
        top = self.root / _bucket(bucket)
        folder = self._file((bucket, prefix.rpartition("/")[0])) if "/" in prefix else None
        found = [p.relative_to(top).as_posix() for p in _files(folder or top)]
        apart = self.root / META / "apart" / bucket
        if apart.is_dir():
            found += [unquote(p.name.removesuffix(".data")) for p in apart.glob("*.data")]
        return sorted(n for n in found if n.startswith(prefix))

    # -- objects with their metadata -----------------------------------------------------------------------------

    def write(self, key: Key, data: bytes, fields: dict[str, Any]) -> dict[str, Any]:
        """Store a new generation of an object with the client-settable `fields`; its resource."""
        with self.lock:
            path = self._place(key)
            staging = self.root / META / "staging" / f"{os.getpid()}-{threading.get_ident()}"
            staging.parent.mkdir(parents=True, exist_ok=True)
            staging.write_bytes(data)
            os.replace(staging, path)
            if path != self._apart(key):  # an earlier generation kept apart (its folder was a file then) is gone
                self._apart(key).unlink(missing_ok=True)
                self._apart(key).with_suffix(".json").unlink(missing_ok=True)
            return self._record(key, path, {k: v for k, v in fields.items() if k not in COMPUTED})

    def resource(self, key: Key) -> dict[str, Any] | None:
        """The object's resource as the JSON API answers it, or None if there is no such object."""
        with self.lock:
            path = self._data(key)
            if path is None:
                return None
            meta = self._load(key)
            if meta is None or meta["stamp"] != _stamp(path):  # written through the mount: a new generation
                guessed = mimetypes.guess_type(key[1])[0] or "application/octet-stream"
                return self._record(key, path, {"contentType": guessed}, raw=True)
            return _resource(key, meta)

    def patch(self, key: Key, fields: dict[str, Any]) -> dict[str, Any] | None:
        """Merge client-settable `fields` into the object's (null removes one, as in objects.patch); its resource."""
        with self.lock:
            if self.resource(key) is None:
                return None
            meta = self._load(key)
            assert meta is not None
            for name, value in fields.items():
                if name in COMPUTED:
                    continue
                if name == "metadata" and isinstance(value, dict):
                    merged = {**meta["fields"].get("metadata", {}), **value}
                    value = {k: v for k, v in merged.items() if v is not None} or None
                if value is None:
                    meta["fields"].pop(name, None)
                else:
                    meta["fields"][name] = value
            meta["metageneration"] = str(int(meta["metageneration"]) + 1)
            meta["updated"] = _now()
            self._save(key, meta)
            return _resource(key, meta)

    def _record(self, key: Key, path: Path, fields: dict[str, Any], raw: bool = False) -> dict[str, Any]:
        data = path.read_bytes()
        when = _iso(path.stat().st_mtime) if raw else _now()
        meta = {
            "generation": str(self._next_generation()),
            "metageneration": "1",
            "stamp": _stamp(path),
            "size": str(len(data)),
            "md5Hash": base64.b64encode(hashlib.md5(data).digest()).decode(),
            "crc32c": crc32c(data),
            "timeCreated": when,
            "updated": when,
            "fields": fields,
        }
        self._save(key, meta)
        return _resource(key, meta)

    def _next_generation(self) -> int:
        """Microseconds since the epoch, as Cloud Storage's generations are, and never the same twice."""
        self._last_generation = max(time.time_ns() // 1000, self._last_generation + 1)
        return self._last_generation

    # -- where things are ----------------------------------------------------------------------------------------

    def _data(self, key: Key) -> Path | None:
        apart = self._apart(key)
        if apart.is_file():
            return apart
        path = self._file(key)
        return path if path is not None and path.is_file() else None

    def _place(self, key: Key) -> Path:
        """Where a write of the object goes: its file when its name is a path a file can have, else apart."""
        path = self._file(key)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                if not path.is_dir():
                    return path
            except (FileExistsError, NotADirectoryError):
                pass
        apart = self._apart(key)
        apart.parent.mkdir(parents=True, exist_ok=True)
        return apart

    def _file(self, key: Key) -> Path | None:
        bucket, name = key
        segments = name.split("/")
        if any(s in {"", ".", ".."} or "\x00" in s or len(s.encode()) > 255 for s in segments):
            return None
        return self.root.joinpath(_bucket(bucket), *segments)

    def _apart(self, key: Key) -> Path:
        return self.root / META / "apart" / _bucket(key[0]) / (quote(key[1], safe="") + ".data")

    def _sidecar(self, key: Key) -> Path:
        path = self._file(key)
        if path is None or self._apart(key).is_file():
            return self._apart(key).with_suffix(".json")
        return self.root / META / "objects" / path.relative_to(self.root).with_name(path.name + ".json")

    def _load(self, key: Key) -> dict[str, Any] | None:
        path = self._sidecar(key)
        loaded: dict[str, Any] | None = json.loads(path.read_text()) if path.is_file() else None
        return loaded

    def _save(self, key: Key, meta: dict[str, Any]) -> None:
        path = self._sidecar(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(meta))

    def _prune(self, folder: Path, stop: Path) -> None:
        """Remove the folders a delete left empty, up to the bucket's (a folder exists only through its objects)."""
        while folder != stop and _inside(folder, stop) and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent


def _resource(key: Key, meta: dict[str, Any]) -> dict[str, Any]:
    bucket, name = key
    return {
        "kind": "storage#object",
        "id": f"{bucket}/{name}/{meta['generation']}",
        "bucket": bucket,
        "name": name,
        "generation": meta["generation"],
        "metageneration": meta["metageneration"],
        "contentType": "application/octet-stream",
        "storageClass": "STANDARD",
        "size": meta["size"],
        "md5Hash": meta["md5Hash"],
        "crc32c": meta["crc32c"],
        "etag": base64.b64encode(f"{meta['generation']}/{meta['metageneration']}".encode()).decode(),
        "timeCreated": meta["timeCreated"],
        "updated": meta["updated"],
        "timeStorageClassUpdated": meta["timeCreated"],
        "timeFinalized": meta["timeCreated"],
        **meta["fields"],
    }


def _bucket(name: str) -> str:
    if not BUCKET_NAME.match(name):
        raise ValueError(f"Invalid bucket name: {name!r}")
    return name


def _files(folder: Path) -> Iterator[Path]:
    if folder.is_dir():
        for parent, _, names in os.walk(folder):
            yield from (Path(parent) / n for n in names)


def _inside(path: Path, top: Path) -> bool:
    return path == top or top in path.parents


def _stamp(path: Path) -> list[int]:
    info = path.stat()
    return [info.st_size, info.st_mtime_ns, info.st_ino]


def _now() -> str:
    return _iso(time.time())


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
