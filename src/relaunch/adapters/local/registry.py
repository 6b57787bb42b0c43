"""Local model registry: versions in SQLite, artifacts copied under root/<pipeline>/<version>/."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import uuid
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
    PRIMARY KEY (pipeline, number),
    UNIQUE (pipeline, run_id)
);
CREATE TABLE IF NOT EXISTS champions (pipeline TEXT PRIMARY KEY, version TEXT NOT NULL);
"""


class LocalRegistry:
    """A `ModelRegistry` on one machine; `register` is idempotent on (pipeline, run_id)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._db = Database(self.root / "registry.db", _SCHEMA)

    def register(self, pipeline: str, run_id: str, artifact_uri: str, metrics: dict[str, float]) -> ModelVersion:
        """Copy the run's artifacts in as the next version; registering the same run again returns that version."""
        existing = self._by_run(pipeline, run_id)
        if existing is not None:
            return existing
        source = _local_path(artifact_uri)
        if not source.is_dir():
            raise FileNotFoundError(f"artifact directory {artifact_uri!r} does not exist")
        refuse_links(source)  # a job's link would make the registry copy (and serve) a file it could not read
        staging = self._pipeline_dir(pipeline) / f".staging-{uuid.uuid4().hex}"
        shutil.copytree(source, staging, symlinks=True)
        try:
            return self._commit_version(pipeline, run_id, staging, metrics)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _commit_version(self, pipeline: str, run_id: str, staging: Path, metrics: dict[str, float]) -> ModelVersion:
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
                pipeline=pipeline, version=f"v{number}", artifact_uri=str(target), run_id=run_id, metrics=metrics
            )
            row = (pipeline, number, model.version, run_id, model.artifact_uri, json.dumps(metrics), model.created_at)
            conn.execute("INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?)", row)
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
    )
