"""Local blob store: artifact URIs are filesystem paths."""

from __future__ import annotations

import os
from pathlib import Path


class LocalBlobStore:
    """Reads and writes text files by path."""

    def read_text(self, uri: str) -> str:
        """The file's text."""
        return Path(uri).read_text(encoding="utf-8")

    def write_text(self, uri: str, text: str) -> None:
        """Write atomically (temp file, then rename)."""
        path = Path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)

    def join(self, base: str, *parts: str) -> str:
        """Join path parts."""
        return os.path.join(base, *parts)
