"""Local blob store: artifact URIs are filesystem paths."""

from __future__ import annotations

import os
from pathlib import Path


class LocalBlobStore:
    """Reads text files by path."""

    def read_text(self, uri: str) -> str:
        """The file's text."""
        return Path(uri).read_text(encoding="utf-8")

    def join(self, base: str, *parts: str) -> str:
        """Join path parts."""
        return os.path.join(base, *parts)
