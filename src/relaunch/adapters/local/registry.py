"""Local model registry: versions in SQLite, artifacts copied under root/<pipeline>/<version>/."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import sqlite3
import uuid
from collections.abc import Mapping
from pathlib import Path

from relaunch.adapters.local.blobs import refuse_links
from relaunch.adapters.local.sqlite import Database
from relaunch.domain.model import ModelVersion

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    pipeline TEXT NOT NULL,
    number INTEGER NOT NULL,
    version TEXT NOT NULL,
    run_id TEXT NOT NULL,
    artifact_uri TEXT NOT NULL,
    metrics TEXT NOT NULL,
    created_at REAL NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (pipeline, number),
    UNIQUE (pipeline, run_id)
);
CREATE TABLE IF NOT EXISTS champions (pipeline TEXT PRIMARY KEY, version TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS aliases (
    pipeline TEXT NOT NULL, alias TEXT NOT NULL, version TEXT NOT NULL, PRIMARY KEY (pipeline, alias));
"""


class LocalRegistry:
    """A `ModelRegistry` on one machine; `register` is idempotent on (pipeline, run_id)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._db = Database(self.root / "registry.db", _SCHEMA)
        self._add_metadata_column()

    def _add_metadata_column(self) -> None:
        """A registry written before versions carried metadata gains the column (its versions read back with none)."""
        with self._db.transaction() as conn:
            columns = {row["name"] for row in conn.execute("PRAGMA table_info(versions)")}
            if "metadata" not in columns:
                conn.execute("ALTER TABLE versions ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}'")

    def content_digest(self, artifact_uri: str) -> str | None:
        """sha256 over the folder's files (relative path and bytes, in path order); None if it is no folder."""
        folder = _local_path(artifact_uri)
        if not folder.is_dir():
            return None
        digest = hashlib.sha256()
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()

    def register(
        self,
        pipeline: str,
        run_id: str,
        artifact_uri: str,
        metrics: dict[str, float],
        metadata: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """Copy the run's artifacts in as the next version, with its provenance and the copy's content digest;
        registering the same run again returns that version."""
        existing = self._by_run(pipeline, run_id)
        if existing is not None:
            return existing
        source = _local_path(artifact_uri)
        if not source.is_dir():
            raise FileNotFoundError(f"artifact directory {artifact_uri!r} does not exist")
        refuse_links(source)  # a job's link would make the registry copy (and serve) a file it could not read
        staging = self._pipeline_dir(pipeline) / f".staging-{uuid.uuid4().hex}"
        shutil.copytree(source, staging, symlinks=True)
        described = {**(metadata or {}), "content_digest": self.content_digest(str(staging)) or ""}
        try:
            return self._commit_version(pipeline, run_id, staging, metrics, described)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _commit_version(
        self, pipeline: str, run_id: str, staging: Path, metrics: dict[str, float], metadata: dict[str, str]
    ) -> ModelVersion:
        """Under the write lock: rename the staged copy into place and insert its row (or find a racing twin)."""
        with self._db.transaction() as conn:
            query = "SELECT * FROM versions WHERE pipeline = ? AND run_id = ?"
            found = conn.execute(query, (pipeline, run_id)).fetchone()
            if found is not None:
                return _version_of(found)
            query = "SELECT COALESCE(MAX(number), 0) + 1 FROM versions WHERE pipeline = ?"
            number: int = conn.execute(query, (pipeline,)).fetchone()[0]
            target = self._pipeline_dir(pipeline) / f"v{number}"
            # A directory without a row is what a crash between rename and commit leaves: it is nobody's.
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
            model = ModelVersion(
                pipeline=pipeline,
                version=f"v{number}",
                artifact_uri=str(target),
                run_id=run_id,
                metrics=metrics,
                metadata=metadata,
            )
            row = (pipeline, number, model.version, run_id, model.artifact_uri, json.dumps(metrics), model.created_at)
            conn.execute(
                "INSERT INTO versions (pipeline, number, version, run_id, artifact_uri, metrics, created_at, metadata)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (*row, json.dumps(metadata)),
            )
            return model

    def champion(self, pipeline: str) -> ModelVersion | None:
        """The version the champion alias points at, if any."""
        with self._db.connection() as conn:
            row = conn.execute("SELECT version FROM champions WHERE pipeline = ?", (pipeline,)).fetchone()
        return None if row is None else self.get(pipeline, row["version"])

    def set_champion(self, pipeline: str, version: str) -> None:
        """Point the champion alias at `version` (KeyError if it is not registered)."""
        if self.get(pipeline, version) is None:
            raise KeyError(f"{pipeline} has no version {version!r}")
        with self._db.connection() as conn:
            conn.execute(
                "INSERT INTO champions VALUES (?, ?) ON CONFLICT (pipeline) DO UPDATE SET version = excluded.version",
                (pipeline, version),
            )

    def alias(self, pipeline: str, name: str) -> ModelVersion | None:
        """The version an environment's alias (`staging`, `production`) points at, if any."""
        with self._db.connection() as conn:
            query = "SELECT version FROM aliases WHERE pipeline = ? AND alias = ?"
            row = conn.execute(query, (pipeline, name)).fetchone()
        return None if row is None else self.get(pipeline, row["version"])

    def set_alias(self, pipeline: str, name: str, version: str) -> None:
        """Point an environment's alias at `version` (KeyError if it is not registered)."""
        if self.get(pipeline, version) is None:
            raise KeyError(f"{pipeline} has no version {version!r}")
        with self._db.connection() as conn:
            conn.execute(
                "INSERT INTO aliases VALUES (?, ?, ?)"
                " ON CONFLICT (pipeline, alias) DO UPDATE SET version = excluded.version",
                (pipeline, name, version),
            )

    def get(self, pipeline: str, version: str) -> ModelVersion | None:
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT * FROM versions WHERE pipeline = ? AND version = ?", (pipeline, version)
            ).fetchone()
        return None if row is None else _version_of(row)

    def list_versions(self, pipeline: str) -> list[ModelVersion]:
        """All versions of the pipeline, oldest first."""
        with self._db.connection() as conn:
            rows = conn.execute("SELECT * FROM versions WHERE pipeline = ? ORDER BY number", (pipeline,)).fetchall()
        return [_version_of(row) for row in rows]

    def delete_version(self, pipeline: str, version: str) -> bool:
        """Delete a version's row, then its files; False if it is not registered, ValueError for the champion.

        The row goes first, under the write lock that moves the champion: a version is never served from a folder
        whose row is gone mid-copy, and a crash part way leaves only files no row names.
        """
        with self._db.transaction() as conn:
            row = conn.execute("SELECT version FROM champions WHERE pipeline = ?", (pipeline,)).fetchone()
            if row is not None and row["version"] == version:
                raise ValueError(f"{pipeline} {version} is the champion: it cannot be deleted")
            query = "SELECT alias FROM aliases WHERE pipeline = ? AND version = ?"
            if held := conn.execute(query, (pipeline, version)).fetchone():
                raise ValueError(f"{pipeline} {version} serves {held['alias']}: it cannot be deleted")
            query = "DELETE FROM versions WHERE pipeline = ? AND version = ? RETURNING artifact_uri"
            deleted = conn.execute(query, (pipeline, version)).fetchone()
        if deleted is None:
            return False
        folder = Path(deleted["artifact_uri"])
        if folder.parent.parent == self.root:  # only a folder this registry made: rows are data, not trusted paths
            trash = folder.with_name(f".deleted-{folder.name}-{uuid.uuid4().hex}")
            with contextlib.suppress(FileNotFoundError):
                folder.rename(trash)
                shutil.rmtree(trash, ignore_errors=True)
        return True

    def _by_run(self, pipeline: str, run_id: str) -> ModelVersion | None:
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT * FROM versions WHERE pipeline = ? AND run_id = ?", (pipeline, run_id)
            ).fetchone()
        return None if row is None else _version_of(row)

    def _pipeline_dir(self, pipeline: str) -> Path:
        if not _NAME.match(pipeline):
            raise ValueError(f"invalid pipeline name {pipeline!r}")
        path = self.root / pipeline
        path.mkdir(parents=True, exist_ok=True)
        return path


def _local_path(uri: str) -> Path:
    """A local artifact location, given as a path or a file:// URI."""
    if uri.startswith("file://"):
        return Path(uri.removeprefix("file://"))
    if "://" in uri:
        raise ValueError(f"the local registry only copies local artifacts, not {uri!r}")
    return Path(uri)


def _version_of(row: sqlite3.Row) -> ModelVersion:
    return ModelVersion(
        pipeline=row["pipeline"],
        version=row["version"],
        artifact_uri=row["artifact_uri"],
        run_id=row["run_id"],
        metrics=json.loads(row["metrics"]),
        created_at=row["created_at"],
        metadata={str(k): str(v) for k, v in json.loads(row["metadata"] or "{}").items()},
    )
