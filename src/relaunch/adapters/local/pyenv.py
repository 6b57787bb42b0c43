"""A checkout's Python environment: a virtual environment per set of declared dependencies, made by uv, kept by hash.

uv, because it resolves and installs in seconds from a cache shared by every environment (and every stack of the
user), where pip would download and unpack each wheel again for each new environment. Each environment is made in a
temporary folder, relocatable, and renamed into `<root>/<hash>` only when complete, under a lock file, so two builds
of one hash make it once and a failed install leaves nothing. The installer runs wheels only (`--no-build`): a
package's build script would run here, in the stack's process; it reads no configuration file (`--no-config`) and
gets an allowlisted environment (UV_* settings, proxies and certificates, never a secret of relaunch). It tries
uv's cache alone first (`--offline`), then the index, so a set of packages installed once builds without a network.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from relaunch.adapters.local.environment import installer_environment
from relaunch.domain.dependencies import (
    PYPROJECT_TOML,
    REQUIREMENTS_TXT,
    Declared,
    DependencyFileError,
    declared,
    environment_hash,
    is_environment_hash,
)
from relaunch.domain.retention import EnvFolder
from relaunch.textsafe import safe_block

MARKER = ".relaunch-environment"  # in a checkout: the hash of its environment, or NONE
NONE = "none"
RECORD = "relaunch-environment.json"
INSTALL_TIMEOUT_S = 900.0
_MESSAGE_LINES, _MESSAGE_CHARS = 12, 1000
_CREDENTIALS = re.compile(r"(://)[^/@\s]+@")


class InstallError(ValueError):
    """The declared dependencies cannot be installed (the installer's own message): permanent for the build."""


@dataclass(frozen=True)
class Prepared:
    """A checkout's environment: its hash (None: none declared) and how the build came by it, for the timeline."""

    hash: str | None
    note: str


class PythonEnvironments:
    """Environments under `root` for relaunch's own interpreter, made with the uv binary `uv` (the uv package's)."""

    def __init__(self, root: Path, *, uv: str | None = None) -> None:
        self.root, self._uv = Path(root), uv

    def prepare(self, checkout: Path) -> Prepared:
        """Read the checkout's declaration, make (or reuse) its environment and mark the checkout with its hash.

        DependencyFileError or InstallError (both ValueError, permanent) with a one-paragraph message.
        """
        wanted = declared(_read(checkout / REQUIREMENTS_TXT), _read(checkout / PYPROJECT_TOML))
        if wanted is None:
            _mark(checkout, NONE)
            return Prepared(None, "environment: none declared (relaunch's own)")
        digest = environment_hash(wanted, _interpreter_id())
        seconds = self._ensure(digest, wanted)
        _mark(checkout, digest)
        if seconds is None:
            return Prepared(digest, f"environment {digest}: reused")
        return Prepared(digest, f"environment {digest}: built in {seconds:.1f} s from {wanted.source}")

    def _ensure(self, digest: str, wanted: Declared) -> float | None:
        """Make the environment unless it exists; the seconds it took, or None when it was there."""
        final = self.root / digest
        if (final / RECORD).exists():
            with _locked(self.root / f"{digest}.lock", fcntl.LOCK_SH):  # not while housekeeping deletes it
                if _used(final):
                    return None
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f"{digest}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent build of this hash finishes first; then it is there
            if _used(final):
                return None
            for stale in self.root.glob(f".{digest}.*"):  # left by a build that died: nobody else holds the lock
                shutil.rmtree(stale, ignore_errors=True)
            started = time.monotonic()
            tmp = Path(tempfile.mkdtemp(prefix=f".{digest}.", dir=self.root))
            try:
                self._install(tmp / "venv", wanted)
                seconds = time.monotonic() - started
                record: dict[str, object] = {
                    "hash": digest,
                    "source": wanted.source,
                    "requirements": list(wanted.requirements),
                }
                record |= {"python": sys.executable, "built_s": round(seconds, 3), "built_at": time.time()}
                (tmp / "venv" / RECORD).write_text(json.dumps(record, indent=2) + "\n")
                (tmp / "venv").rename(final)  # atomic: an environment is complete or absent
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            return seconds

    def _install(self, venv: Path, wanted: Declared) -> None:
        requirements = venv.parent / "requirements.txt"  # exactly what was checked and hashed, nothing it includes
        requirements.write_text("".join(f"{line}\n" for line in wanted.requirements))
        made = ["venv", "--quiet", "--no-config", "--relocatable", "--no-project", "--python", sys.executable]
        self._uv_run(wanted.source, [*made, str(venv)])
        install = ["pip", "install", "--quiet", "--no-config", "--no-build", "--python", str(venv / "bin" / "python")]
        # Compiled once here: the job's environment is read-only to it, so what it imports is never compiled twice.
        install += ["--compile-bytecode"]
        install += ["--requirement", str(requirements)]
        if self._uv_run(wanted.source, [*install, "--offline"], check=False) is not None:
            self._uv_run(wanted.source, install)  # the cache alone could not: ask the index

    def _uv_run(self, source: str, args: list[str], check: bool = True) -> str | None:
        """Run uv; None on success, else its message (raised as InstallError when `check`)."""
        try:
            done = subprocess.run(
                [self._uv or _find_uv(), *args],
                cwd=self.root,
                env=installer_environment(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_S,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise InstallError(f"{source}: the installer could not run: {exc}") from None
        if done.returncode == 0:
            return None
        message = f"{source}: the installer failed: {_bounded(done.stderr or done.stdout)}"
        if check:
            raise InstallError(message)
        return message


class PrunableEnvironments(PythonEnvironments):
    """The environments, as housekeeping sees them: each one's size and last use, the hashes checkouts name, and a
    deletion that never races a build reusing the same environment (both hold its lock file)."""

    def __init__(self, root: Path, workspaces: Path, *, uv: str | None = None) -> None:
        super().__init__(root, uv=uv)
        self.workspaces = Path(workspaces)

    def environments(self) -> list[EnvFolder]:
        """Every complete environment (a build's temporary folder starts with a dot and is its builder's)."""
        try:
            entries = [e for e in os.scandir(self.root) if is_environment_hash(e.name) and e.is_dir()]
        except FileNotFoundError:
            return []
        found = []
        for entry in entries:
            try:
                last_used = os.stat(Path(entry.path) / RECORD).st_mtime
            except FileNotFoundError:
                continue  # being deleted
            found.append(EnvFolder(entry.name, _disk_size(Path(entry.path)), last_used))
        return found

    def named_by_checkouts(self) -> dict[str, str]:
        """Checkout folder -> the environment hash its marker names (checkouts that name none are left out)."""
        named = {}
        try:
            checkouts = [e for e in os.scandir(self.workspaces) if e.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            return {}
        for entry in checkouts:
            try:
                with open(Path(entry.path) / MARKER, "rb") as fh:
                    text = fh.read(64).decode("ascii", errors="replace").strip()
            except OSError:
                continue
            if is_environment_hash(text):
                named[entry.name] = text
        return named

    def delete_idle(self, name: str, idle_since: float) -> bool:
        """Delete environment `name` unless it was used after `idle_since` (checked under its lock); True if gone."""
        if not is_environment_hash(name):
            raise ValueError(f"{name[:40]!r} is not an environment hash")
        final = self.root / name
        with _locked(self.root / f"{name}.lock", fcntl.LOCK_EX):
            try:
                if os.stat(final / RECORD).st_mtime > idle_since:
                    return False
            except FileNotFoundError:
                return True
            trash = self.root / f".{name}.deleted-{os.getpid()}"
            final.rename(trash)  # atomic: a builder that takes the lock next builds it again
        shutil.rmtree(trash, ignore_errors=True)  # the lock file stays: a builder may hold it open
        return True


def environment_of(checkout: Path, root: Path) -> Path | None:
    """The environment a checkout's jobs run with (None: relaunch's own interpreter); ValueError if it names none.

    The marker is in the checkout, which a job may write: only the name of a complete environment under `root` is
    taken from it, never a path.
    """
    try:
        with open(Path(checkout) / MARKER, "rb") as fh:
            text = fh.read(64).decode("ascii", errors="replace").strip()
    except FileNotFoundError:
        return None
    if text == NONE:
        return None
    if not is_environment_hash(text) or not (Path(root) / text / RECORD).is_file():
        raise ValueError(f"the checkout's environment {text[:40]!r} is not one this stack built")
    return Path(root) / text


@contextlib.contextmanager
def _locked(path: Path, mode: int) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as lock:
        fcntl.flock(lock, mode)
        yield


def _used(env: Path) -> bool:
    """Mark a complete environment used now (its record's mtime is its last use); False if it is not there."""
    try:
        os.utime(env / RECORD)
    except FileNotFoundError:
        return False
    return True


def _disk_size(path: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(path):
        for file in files:
            try:
                total += os.lstat(os.path.join(folder, file)).st_size
            except OSError:
                continue
    return total


def _find_uv() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


def _interpreter_id() -> str:
    """Which interpreter an environment is for: its real path and version (a new Python makes new environments)."""
    return f"{os.path.realpath(sys.executable)} {sys.version}"


def _read(path: Path) -> bytes | None:
    """A dependency file's bytes, None when absent; a symlink or a folder in its place is refused (the commit's)."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise DependencyFileError(f"{path.name}: must be a regular file in the repository, not a link or folder")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _mark(checkout: Path, value: str) -> None:
    tmp = checkout / f"{MARKER}.{os.getpid()}.tmp"
    tmp.write_text(value + "\n")
    tmp.replace(checkout / MARKER)


def _bounded(text: str) -> str:
    """The installer's message: its first lines, bounded, terminal-safe, with any URL's credentials hidden."""
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip()][:_MESSAGE_LINES]
    shown = _CREDENTIALS.sub(r"\1***@", "\n".join(lines) or "no message")
    return safe_block(shown[:_MESSAGE_CHARS])
