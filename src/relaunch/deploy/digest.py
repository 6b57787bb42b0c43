"""A digest of a deploy source folder: `python3 -m relaunch.deploy.digest functions` prints what the functions'
`relaunch_source` label records, so a changed source (code, requirements, a rebuilt wheel) redeploys them."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

LENGTH = 16  # hex digits; a label value holds at most 63 characters


def source_digest(folder: Path) -> str:
    """sha256 over every file's relative path and bytes, in path order (caches left out)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"deploy source {folder} is not a folder")
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not _cache(p)):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:LENGTH]


def _cache(path: Path) -> bool:
    return "__pycache__" in path.parts or path.suffix == ".pyc"


def main(argv: list[str] | None = None) -> int:
    """Print the digest of the folder named on the command line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python3 -m relaunch.deploy.digest FOLDER", file=sys.stderr)
        return 2
    try:
        print(source_digest(Path(args[0])))
    except OSError as exc:
        print(f"relaunch.deploy.digest: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
