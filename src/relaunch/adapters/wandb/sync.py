"""Upload a run's offline W&B runs with `wandb sync`, then link the evaluation to the model version it scored.

`wandb sync` (the SDK's Go core) is what W&B itself supports for offline runs; it runs in a subprocess that gets the
key through its environment only (never an argument, never a log line), with fresh wandb settings folders: the run's
own `.config` was written by a job, and a job must not choose the host the key is sent to. The sync's exit status
says little (it exits 0 after refusals), so what it did is read back through the public API afterwards.

The files were written by a job running code a push brought. Before anything is uploaded they are checked: no link
out of the run's folder, every run in the pipeline's project and entity, artifact files only from the run's own folder
and no references (wandb-core reads a manifest entry's `local_path` and uploads it: a forged path could publish a file
of relaunch's host). Offline, an evaluation cannot `use_artifact`; it names the model it scored (by digest) in its
config, and the link is made here only when that digest is the logged version's.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from relaunch.adapters.wandb import check_settings, make_api, translate_errors
from relaunch.adapters.wandb.artifacts import WandbArtifacts
from relaunch.adapters.wandb.offline_runs import OfflineRun, artifact_records, offline_runs
from relaunch.domain.ports import TransientError
from relaunch.domain.tracking_sync import SyncedTracking

SYNC_TIMEOUT = 600.0
_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class WandbSync:
    """A `TrackingSync` against the W&B API at `base_url`, with `api_key` (relaunch's, never a job's)."""

    def __init__(self, *, api_key: str, base_url: str, api: Any | None = None) -> None:
        check_settings("WandbSync", api_key=api_key, base_url=base_url)
        self.base_url = base_url
        self._api_key = api_key
        self._api = api

    def __repr__(self) -> str:  # never the key
        return f"WandbSync(base_url={self.base_url!r})"

    @property
    def api(self) -> Any:
        """The wandb.Api, made (and the key verified) on first use."""
        if self._api is None:
            self._api = make_api(self._api_key, self.base_url)
        return self._api

    def sync(self, folder: str, *, entity: str | None, project: str, model_alias: str) -> SyncedTracking:
        """Upload the runs under `folder`, find the version logged under `model_alias`, link the evaluation to it."""
        if folder.startswith("gs://"):
            raise ValueError("W&B sync reads a local run folder; a gs:// one is not synced (yet)")
        runs = offline_runs(Path(folder))
        if not runs:
            return SyncedTracking()
        for run in runs:
            check_run(run, Path(folder).parent, entity, project)
        self._upload([r.folder for r in runs], entity, project)
        with translate_errors(f"W&B: read back the runs synced to {project}"):
            owner = entity or self.api.default_entity
            synced = {r.run_id: self.api.run(f"{owner}/{project}/{r.run_id}") for r in runs}
            artifact = self._logged_version(runs, owner, project, model_alias)
            if artifact is not None:
                for run in runs:
                    used = run.config.get("model_artifact")
                    if run.job_type == "evaluate" and isinstance(used, dict) and used.get("digest") == artifact.digest:
                        synced[run.run_id].use_artifact(artifact)
        app = _app_url(self.base_url)
        urls = {r.job_type or r.run_id: f"{app}/{owner}/{project}/runs/{r.run_id}" for r in runs}
        ref = f"{owner}/{project}/{artifact.name.split(':')[0]}:{artifact.version}" if artifact is not None else None
        return SyncedTracking(run_urls=urls, artifact=ref)

    def set_alias(self, ref: str, alias: str) -> None:
        """Point `alias` at the concrete version `ref` (WandbArtifacts' alias code, with this key and API)."""
        WandbArtifacts(api_key=self._api_key, base_url=self.base_url, api=self.api).set_alias(ref, alias)

    def _upload(self, folders: list[Path], entity: str | None, project: str) -> None:
        """`wandb sync` the run folders, the key in its environment only; TransientError on a timeout or a refusal."""
        target = ["--project", project, *(["--entity", entity] if entity else [])]
        with tempfile.TemporaryDirectory(prefix="relaunch-wandb-sync-") as home:
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": home,
                "WANDB_API_KEY": self._api_key,
                "WANDB_BASE_URL": self.base_url,
                "WANDB_CONFIG_DIR": f"{home}/config",
                "WANDB_CACHE_DIR": f"{home}/cache",
                "WANDB_DATA_DIR": f"{home}/data",
            }
            command = [sys.executable, "-m", "wandb", "sync", "--include-synced", *target, *map(str, folders)]
            try:
                done = subprocess.run(  # cwd: where it writes its debug logs, gone with the folder
                    command, cwd=home, env=env, capture_output=True, text=True, timeout=SYNC_TIMEOUT, check=False
                )
            except subprocess.TimeoutExpired:
                raise TransientError(f"wandb sync took longer than {SYNC_TIMEOUT:.0f}s") from None
        output = (done.stdout + done.stderr).replace(self._api_key, "***")
        errors = [line.strip() for line in output.splitlines() if "ERROR" in line]
        if done.returncode != 0 or errors:
            raise TransientError(f"wandb sync failed: {(errors or output.splitlines() or ['no output'])[0][:300]}")

    def _logged_version(self, runs: list[OfflineRun], owner: str, project: str, alias: str) -> Any | None:
        """The synced version the training logged under `alias`, checked by its digest (None: no model logged)."""
        logged = [(a, r) for r in runs for a in r.artifacts if alias in a.aliases]
        if not logged:
            return None
        record, _ = logged[-1]
        artifact = self.api.artifact(f"{owner}/{project}/{record.name}:{alias}")
        if artifact.digest != record.digest:
            raise ValueError(f"{record.name}:{alias} holds digest {artifact.digest}, not the logged {record.digest}")
        return artifact


def check_run(run: OfflineRun, run_folder: Path, entity: str | None, project: str) -> None:
    """ValueError unless the job-written run is safe to upload: its place, its files, its artifacts' sources."""
    if not _RUN_ID.fullmatch(run.run_id):  # it names the run's page and its API path
        raise ValueError(f"run id {run.run_id[:40]!r} is not a W&B run id")
    if run.project != project or (entity is not None and run.entity not in ("", entity)):
        raise ValueError(f"run {run.run_id} names {run.entity}/{run.project}, not the pipeline's {entity}/{project}")
    root = run_folder.resolve()
    for path in [run.folder, *run.folder.rglob("*")]:  # wandb links its own logs; nothing may lead out of the run
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            raise ValueError(f"run {run.run_id}: {path.name} links outside the run's folder")
    for record in artifact_records(run.folder):
        for entry in record.manifest.contents:
            source = Path(entry.local_path).resolve()
            if entry.ref or not entry.local_path or not source.is_relative_to(root):
                raise ValueError(f"run {run.run_id}: artifact file {entry.path[:80]!r} is not in the run's folder")
        if record.manifest.manifest_file_path:
            raise ValueError(f"run {run.run_id}: an artifact manifest kept in a file is not synced")


def _app_url(base_url: str) -> str:
    from wandb.util import api_to_app_url

    return api_to_app_url(base_url).rstrip("/")
