"""W&B artifacts: download a model artifact version for evaluation, and move an alias onto a promoted version.

`fetch` resolves an alias once and reports the concrete version it downloaded, named by the collection it was
fetched through; `set_alias` takes only a concrete version, so an alias is never resolved a second time.

A local destination is replaced whole by a folder swapped in. A gs:// destination (the gcp profile's run folders,
where the evaluation job on Vertex AI reads the model) is downloaded to a temporary folder and put into Cloud
Storage by `cloud` (GcsBlobStore.put_tree, wired by bootstrap). Either way the run gets its own copy of the version
it pinned, in its own folder, which nothing outside the run changes under it.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol

from relaunch.adapters.wandb import check_settings, make_api, parse_ref, translate_errors
from relaunch.domain.ports import FetchedArtifact
from relaunch.triggers.wandb import is_concrete


class CloudFolders(Protocol):
    """Puts a local folder into Cloud Storage, replacing the gs:// folder's content whole."""

    def put_tree(self, folder: Path, dest: str) -> None: ...


class WandbArtifacts:
    """An `ArtifactSource` backed by W&B's public API at `base_url`; `cloud` receives fetches into gs:// folders."""

    def __init__(
        self, *, api_key: str, base_url: str, api: Any | None = None, cloud: CloudFolders | None = None
    ) -> None:
        if api is None:
            check_settings("WandbArtifacts", api_key=api_key, base_url=base_url)
        self.base_url = base_url
        self.cloud = cloud
        self._api_key = api_key
        self._api = api

    def __repr__(self) -> str:  # never the key
        return f"WandbArtifacts(base_url={self.base_url!r})"

    @property
    def api(self) -> Any:
        """The wandb.Api, made (and the key verified) on first use."""
        if self._api is None:
            self._api = make_api(self._api_key, self.base_url)
        return self._api

    def fetch(self, ref: str, dest: str) -> FetchedArtifact:
        """Download the version's files to `dest` (replacing it whole); name the concrete version fetched."""
        parse_ref(ref)
        if dest.startswith("gs://"):
            return self._fetch_to_cloud(ref, dest)
        target = Path(dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        # A fresh folder, swapped in whole: no file of an earlier (or interrupted) fetch is evaluated with this one.
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            artifact, summary, producer = self._download(ref, staging)
            files = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
            shutil.rmtree(target, ignore_errors=True)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return _fetched(artifact, summary, producer, files)

    def _fetch_to_cloud(self, ref: str, dest: str) -> FetchedArtifact:
        """Download to a temporary folder, then make the gs:// folder `dest` hold exactly those files."""
        if self.cloud is None:
            raise ValueError(f"dest {dest!r}: a gs:// folder needs Cloud Storage, and this WandbArtifacts has none")
        with tempfile.TemporaryDirectory(prefix="relaunch-artifact-") as tmp:
            staging = Path(tmp)
            artifact, summary, producer = self._download(ref, staging)
            files = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
            self.cloud.put_tree(staging, dest)
        return _fetched(artifact, summary, producer, files)

    def _download(self, ref: str, root: Path) -> tuple[Any, dict[str, Any], Any]:
        with translate_errors(f"W&B: fetch artifact {ref}"):
            artifact = self.api.artifact(ref)  # an alias is resolved here, once: the result names its version
            # skip_cache: a function instance's disk is memory; one copy of the model is enough.
            artifact.download(root=str(root), skip_cache=True)
            producer = artifact.logged_by()
            summary = dict(producer.summary_metrics) if producer is not None else {}
        return artifact, summary, producer

    def set_alias(self, ref: str, alias: str) -> None:
        """Add `alias` to the concrete version `ref` (W&B moves it off any other version); idempotent."""
        if not is_concrete(parse_ref(ref)[3]):
            raise ValueError(f"set_alias needs a concrete version (entity/project/name:vN), got {ref!r}")
        if not alias or ":" in alias or "/" in alias:
            raise ValueError(f"alias must be a plain name, got {alias!r}")
        with translate_errors(f"W&B: alias {alias} on {ref}"):
            artifact = self.api.artifact(ref)
            if alias in artifact.aliases:
                return
            artifact.aliases.append(alias)
            artifact.save()


def _fetched(artifact: Any, summary: dict[str, Any], producer: Any, files: list[str]) -> FetchedArtifact:
    """What was fetched, named by the collection it was fetched through (a registry's, for a linked version)."""
    collection = str(artifact.name).split(":", 1)[0]
    return FetchedArtifact(
        ref=f"{artifact.entity}/{artifact.project}/{collection}:{artifact.version}",
        artifact_id=artifact.id,
        reported_metrics=numeric(summary),
        metadata={
            "type": artifact.type,
            "aliases": list(artifact.aliases),
            "digest": artifact.digest,
            "metadata": dict(artifact.metadata or {}),
            "files": files,
            "produced_by": "/".join(producer.path) if producer is not None else None,
        },
    )


def numeric(summary: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a run summary, without W&B's own `_`-prefixed keys (_step, _runtime, ...)."""
    return {
        key: float(value)
        for key, value in summary.items()
        if not key.startswith("_")
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    }
