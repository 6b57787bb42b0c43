"""Local stand-in for W&B artifacts: `entity/project/name:vN` is the folder root/entity/project/name/vN/.

Each version folder holds the model files (and optionally `metadata.json`); `root/entity/project/name/aliases.json`
maps aliases to versions. `log` adds a folder as the next version, as `wandb.log_artifact` would. Each version has
an id shaped as W&B's (base64 of "Artifact:<number>"), derived from its name: W&B's `${artifact_version}` carries it,
and a fetch reports it, so an event can pin the version an alias named when it was sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from relaunch.domain.ports import FetchedArtifact

_PART = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_REF = re.compile(rf"^({_PART})/({_PART})/({_PART}):([A-Za-z0-9._-]+)$")
_VERSION = re.compile(r"^v(0|[1-9][0-9]*)$")
METADATA = "metadata.json"
ALIASES = "aliases.json"


class LocalArtifacts:
    """An `ArtifactSource` on a folder; fetch copies atomically, aliases move atomically."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def fetch(self, ref: str, dest: str) -> FetchedArtifact:
        """Copy the files of version `ref` (or of the version an alias in it points at, resolved once) to `dest`."""
        source = self._version_dir(ref)
        target = Path(dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
        shutil.copytree(source, staging, ignore=shutil.ignore_patterns(METADATA))
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)  # readers see the old folder or the whole new one, never half of it
        path = source / METADATA
        metadata = dict(json.loads(path.read_text())) if path.exists() else {}
        reported = metadata.get("reported_metrics")
        concrete = f"{self._collection_name(ref)}:{source.name}"  # the version copied, never the alias asked for
        return FetchedArtifact(
            ref=concrete,
            reported_metrics=_numbers(reported) if isinstance(reported, dict) else {},
            metadata=metadata,
            artifact_id=_version_id(concrete),
        )

    def resolve(self, ref: str) -> str:
        """The concrete `entity/project/name:vN` that `ref` (a version or an alias) names now; ValueError if none."""
        return f"{self._collection_name(ref)}:{self._version_dir(ref).name}"

    def version_id(self, ref: str) -> str:
        """W&B's kind of id of the version `ref` names now (what its `${artifact_version}` carries)."""
        return _version_id(self.resolve(ref))

    def set_alias(self, ref: str, alias: str) -> None:
        """Point `alias` at the concrete version `ref` names (moving it off any other version); idempotent."""
        if not re.fullmatch(r"[A-Za-z0-9._-]+", alias) or _VERSION.match(alias):
            raise ValueError(f"alias {alias!r} is not a valid alias")
        if not _VERSION.match(ref.rpartition(":")[2]):  # resolving an alias again could move it off what was evaluated
            raise ValueError(f"set_alias needs a concrete version (entity/project/name:vN), got {ref!r}")
        version = self._version_dir(ref).name
        collection = self._collection(ref)
        _write_json(collection / ALIASES, {**self.aliases(ref), alias: version})

    def aliases(self, ref: str) -> dict[str, str]:
        """alias -> version of the collection `ref` belongs to."""
        path = self._collection(ref) / ALIASES
        return dict(json.loads(path.read_text())) if path.exists() else {}

    def log(
        self, collection: str, source: Path, *, metadata: dict[str, Any] | None = None, aliases: tuple[str, ...] = ()
    ) -> str:
        """Add the files of `source` as the next version of `entity/project/name`; its ref."""
        folder = self._collection(f"{collection}:latest")
        folder.mkdir(parents=True, exist_ok=True)
        numbers = [int(m[1]) for p in folder.iterdir() if (m := _VERSION.match(p.name)) and p.is_dir()]
        version = f"v{max(numbers, default=-1) + 1}"
        staging = folder / f".{version}.{uuid.uuid4().hex}.tmp"
        shutil.copytree(source, staging)
        if metadata is not None:
            (staging / METADATA).write_text(json.dumps(metadata, indent=2))
        os.rename(staging, folder / version)  # fails if a concurrent log took this number: nothing half-written
        ref = f"{collection}:{version}"
        for alias in ("latest", *aliases):
            self.set_alias(ref, alias)
        return ref

    def _collection_name(self, ref: str) -> str:
        match = _REF.match(ref or "")
        if match is None:
            raise ValueError(f"artifact ref must look like entity/project/name:version, got {ref!r}")
        return f"{match[1]}/{match[2]}/{match[3]}"

    def _collection(self, ref: str) -> Path:
        return self.root / self._collection_name(ref)

    def _version_dir(self, ref: str) -> Path:
        collection, name = self._collection(ref), ref.rpartition(":")[2]
        version = name if _VERSION.match(name) else self.aliases(ref).get(name)
        if not isinstance(version, str) or not _VERSION.match(version) or not (collection / version).is_dir():
            raise ValueError(f"artifact {ref} does not exist under {self.root}")
        return collection / version


def _version_id(concrete: str) -> str:
    """The id of version `entity/project/name:vN`, shaped as W&B's ("QXJ0aWZhY3Q6..." is "Artifact:<number>")."""
    number = int(hashlib.sha256(concrete.encode()).hexdigest()[:12], 16)
    return base64.b64encode(f"Artifact:{number}".encode()).decode()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


def _numbers(values: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)}
