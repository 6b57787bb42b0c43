"""Local blob store: artifact URIs are filesystem paths."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path


class LocalBlobStore:
    """Reads text files by path; copies model folders (read-only ones for jobs, plain ones for the registry)."""

    def read_text(self, uri: str) -> str:
        """The file's text."""
        return Path(uri).read_text(encoding="utf-8")

    def join(self, base: str, *parts: str) -> str:
        """Join path parts."""
        return os.path.join(base, *parts)

    def stage_read_only(self, src: str, dest: str) -> str:
        """A fresh read-only copy of folder `src` at `dest`, so no job is handed `src` itself.

        Made anew on every call: `dest` lies in the run's own folder, which its training job could write before
        the evaluation is staged, so a copy found there is never trusted.
        """
        return _copy_once(src, dest, read_only=True, replace=True)

    def copy_tree(self, src: str, dest: str) -> str:
        """A copy of folder `src` at `dest`, made once: a later call copies nothing, whatever `src` holds by then."""
        return _copy_once(src, dest, read_only=False)


_copy_file = shutil.copy2  # the copy of one file (a test makes it fail half way)


def _copy_once(src: str, dest: str, *, read_only: bool, replace: bool = False) -> str:
    target = Path(dest)
    if target.is_dir() and not replace:
        return str(target)
    source = Path(src.removeprefix("file://"))
    refuse_links(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Copied aside and renamed: a crash or a concurrent attempt never leaves a half copy at `dest`.
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        shutil.copytree(source, tmp / "copy", symlinks=True, copy_function=_copy_file)
        if read_only:
            _read_only_files(tmp / "copy")
        if replace and (target.exists() or target.is_symlink()):
            target.rename(tmp / "old")  # whatever was there goes with the temporary folder
        try:
            (tmp / "copy").rename(target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(target)


def refuse_links(folder: Path) -> None:
    """ValueError if `folder` is missing or holds a symbolic link (a job's way to make a copy read another file)."""
    if not folder.is_dir() or folder.is_symlink():
        raise ValueError(f"model folder {str(folder)!r} does not exist or is a link")
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            if os.path.islink(os.path.join(root, name)):
                raise ValueError(f"model folder {str(folder)!r} holds a symbolic link: {name!r}")
        for name in files:  # a FIFO would block the copy, a device would copy what it reads
            if not stat.S_ISREG(os.lstat(os.path.join(root, name)).st_mode):
                raise ValueError(f"model folder {str(folder)!r} holds {name!r}, which is not a regular file")


def _read_only_files(folder: Path) -> None:
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            os.chmod(path, stat.S_IMODE(os.stat(path).st_mode) & ~0o222)
