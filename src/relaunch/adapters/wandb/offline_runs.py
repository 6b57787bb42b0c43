"""Read the W&B runs a job logged offline: its `run-<id>.wandb` file, as wandb's own sync reads it.

The file is wandb's transaction log: a 7-byte header (`:W&B`, magic 0xBEE1, version 0), then LevelDB's log format
(32 KiB blocks of chunks, each `crc32c:u32 length:u16 type:u8` + data; types FULL, FIRST, MIDDLE, LAST) carrying
`wandb.proto.wandb_internal_pb2.Record` messages. wandb >= 0.20 syncs in its Go core and ships no Python reader, so
this one reads the records with wandb's own protobuf classes.

A job wrote these files, and a job runs code that a push brought: the file's size is capped, a malformed file is one
ValueError naming it, and checksums are not trusted for anything (whoever could write the file could write them).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
BLOCK = 32 * 1024
CHUNK_HEADER = struct.Struct("<IHB")
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
MAX_BYTES = 64 * 1024 * 1024  # a run of metrics and a model artifact's manifest is kilobytes


@dataclass(frozen=True)
class LoggedArtifact:
    """An artifact the run logged (an output): offline it has no version number yet; its digest names its content."""

    name: str
    type: str
    digest: str
    metadata: dict[str, Any]
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class OfflineRun:
    """One offline W&B run: who it is, what it logged and what it produced."""

    folder: Path
    run_id: str
    entity: str
    project: str
    job_type: str
    group: str
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[LoggedArtifact] = field(default_factory=list)


def offline_runs(wandb_dir: Path) -> list[OfflineRun]:
    """Every offline run under `wandb_dir` (the `wandb/` folder W&B made), oldest first; [] when there is none."""
    if not wandb_dir.is_dir():
        return []
    files = sorted(wandb_dir.glob("offline-run-*/run-*.wandb"))
    return [read_run(path) for path in files if not path.is_symlink() and not path.parent.is_symlink()]


def read_run(path: Path) -> OfflineRun:
    """The run recorded in one `.wandb` file; ValueError (naming the file) when it is not one."""
    from google.protobuf.message import DecodeError
    from wandb.proto import wandb_internal_pb2 as pb

    builder = _Builder(path.parent)
    try:
        for data in records(_read_capped(path)):
            record = pb.Record()  # type: ignore[attr-defined]  # re-exported by `import *` of protobuf's major version
            record.ParseFromString(data)
            builder.add(record)
    except (DecodeError, ValueError) as exc:
        raise ValueError(f"{path.name}: not a W&B run file ({str(exc)[:120]})") from None
    if builder.run is None:
        raise ValueError(f"{path.name}: no run record (the job stopped before wandb.init finished)")
    return builder.run


def artifact_records(run_folder: Path) -> list[Any]:
    """The artifact records (wandb's protobuf) of the run file in `run_folder`, as `wandb sync` will upload them."""
    from wandb.proto import wandb_internal_pb2 as pb

    found = []
    for path in sorted(run_folder.glob("run-*.wandb")):
        for data in records(_read_capped(path)):
            record = pb.Record()  # type: ignore[attr-defined]
            record.ParseFromString(data)
            if record.WhichOneof("record_type") == "artifact":
                found.append(record.artifact)
    return found


def records(raw: bytes) -> list[bytes]:
    """The payloads of the LevelDB-log records after W&B's header; ValueError when the framing is broken."""
    if not raw.startswith(HEADER):
        raise ValueError("no W&B header")
    found, pending, pos = [], b"", len(HEADER)
    while pos + CHUNK_HEADER.size <= len(raw):
        left = BLOCK - pos % BLOCK
        if left < CHUNK_HEADER.size:  # a block's tail too short for a chunk header is padding
            pos += left
            continue
        _, length, kind = CHUNK_HEADER.unpack_from(raw, pos)
        pos += CHUNK_HEADER.size
        if kind not in (FULL, FIRST, MIDDLE, LAST) or length > left - CHUNK_HEADER.size or pos + length > len(raw):
            if kind == 0 and length == 0:  # zeroed space at the end of a file still being written
                break
            raise ValueError(f"broken chunk at byte {pos - CHUNK_HEADER.size}")
        pending = raw[pos : pos + length] if kind in (FULL, FIRST) else pending + raw[pos : pos + length]
        pos += length
        if kind in (FULL, LAST):
            found.append(pending)
            pending = b""
    return found


def _read_capped(path: Path) -> bytes:
    with path.open("rb") as f:
        raw = f.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise ValueError(f"larger than {MAX_BYTES // (1024 * 1024)} MiB")
    return raw


class _Builder:
    """Folds a run's records into an OfflineRun (later values of a key win, as W&B's summary does)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.run: OfflineRun | None = None
        self._pending: list[Any] = []

    def add(self, record: Any) -> None:
        kind = record.WhichOneof("record_type")
        if kind == "run" and self.run is None:
            r = record.run
            self.run = OfflineRun(self.folder, r.run_id, r.entity, r.project, r.job_type, r.run_group)
            self.run.config.update(_items(r.config.update))
            self.run.summary.update(_items(r.summary.update))
            for held in self._pending:
                self.add(held)
        elif self.run is None:
            self._pending.append(record)
        elif kind == "config":
            self.run.config.update(_items(record.config.update))
        elif kind == "summary":
            self.run.summary.update(_items(record.summary.update))
        elif kind == "history":
            self.run.history.append(_items(record.history.item))
        elif kind == "artifact":
            a = record.artifact
            metadata = json.loads(a.metadata) if a.metadata else {}
            if not isinstance(metadata, dict):
                raise ValueError("an artifact's metadata is not an object")
            self.run.artifacts.append(LoggedArtifact(a.name, a.type, a.digest, metadata, tuple(a.aliases)))


def _items(items: Any) -> dict[str, Any]:
    """W&B's key/value_json updates as a dict (a nested key is joined with '/'); W&B's own `_` keys left out."""
    out = {}
    for item in items:
        key = "/".join(item.nested_key) if item.nested_key else item.key
        if key and not key.startswith("_"):
            out[key] = json.loads(item.value_json)
    return out
