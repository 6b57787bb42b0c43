"""Where a folder an environment variable names is on this machine: a gs:// URI through the Cloud Storage FUSE mount.

On Vertex AI the job is handed gs:// URIs (AIP_MODEL_DIR=gs://<bucket>/<base>/model/) and finds every bucket it may
reach mounted at /gcs/<bucket>/ (https://cloud.google.com/vertex-ai/docs/training/cloud-storage-file-system), so
plain file writes land in Cloud Storage. RELAUNCH_GCS_MOUNT_ROOT moves that root, for runs by hand and tests only:
relaunch's local agent hands a job local paths, which are used as they are.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

MOUNT_ROOT = "/gcs"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")


def local_dir(name: str, value: str) -> Path:
    """The folder `value` (of variable `name`) names here; exits naming the variable if it cannot be reached."""
    if not value.startswith("gs://"):
        return Path(value)
    bucket, _, path = value.removeprefix("gs://").partition("/")
    parts = [p for p in path.split("/") if p]
    if not _BUCKET.fullmatch(bucket) or any(p in (".", "..") for p in parts):
        sys.exit(f"error: {name} must be gs://BUCKET/PATH, got {value!r}")
    mount = Path(os.environ.get("RELAUNCH_GCS_MOUNT_ROOT") or MOUNT_ROOT) / bucket
    if not mount.is_dir():
        sys.exit(f"error: {name} is {value}, but gs://{bucket} is not mounted at {mount} (Cloud Storage FUSE)")
    return mount.joinpath(*parts)
