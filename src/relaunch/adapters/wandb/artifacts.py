"""W&B artifacts: download a model artifact version for evaluation, and move an alias onto a promoted version.

`fetch` writes to a local folder only. A gs:// destination is refused with a ValueError: the ports have no
BlobStore writer yet, and uploading belongs there rather than in a W&B adapter.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from relaunch.adapters.wandb import check_settings, make_api, parse_ref, translate_errors


class WandbArtifacts:
    """An `ArtifactSource` backed by W&B's public API at `base_url`."""

    def __init__(self, *, api_key: str, base_url: str, api: Any | None = None) -> None:
        if api is None:
            check_settings("WandbArtifacts", api_key=api_key, base_url=base_url)
        self.base_url = base_url
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

    def fetch(self, ref: str, dest: str) -> dict[str, Any]:
        """Download the version's files under `dest`; return its metadata and the producing run's summary."""
        entity, project, _, _ = parse_ref(ref)
        if dest.startswith("gs://"):
            raise ValueError(
                f"dest {dest!r}: gs:// targets need a BlobStore writer; WandbArtifacts downloads to local folders"
            )
        root = Path(dest)
        root.mkdir(parents=True, exist_ok=True)
        with translate_errors(f"W&B: fetch artifact {ref}"):
            artifact = self.api.artifact(ref)
            # skip_cache: a function instance's disk is memory; one copy of the model is enough.
            artifact.download(root=str(root), skip_cache=True)
            producer = artifact.logged_by()
            summary = dict(producer.summary_metrics) if producer is not None else {}
        return {
            "ref": f"{entity}/{project}/{artifact.name}",
            "version": artifact.version,
            "type": artifact.type,
            "aliases": list(artifact.aliases),
            "digest": artifact.digest,
            "metadata": dict(artifact.metadata or {}),
            "files": sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()),
            "produced_by": "/".join(producer.path) if producer is not None else None,
            "reported_metrics": numeric(summary),
        }

    def set_alias(self, ref: str, alias: str) -> None:
        """Add `alias` to the version (W&B moves it off any other version of the collection); idempotent."""
        parse_ref(ref)
        if not alias or ":" in alias or "/" in alias:
            raise ValueError(f"alias must be a plain name, got {alias!r}")
        with translate_errors(f"W&B: alias {alias} on {ref}"):
            artifact = self.api.artifact(ref)
            if alias in artifact.aliases:
                return
            artifact.aliases.append(alias)
            artifact.save()


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
