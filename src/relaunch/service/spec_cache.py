"""Pipeline specs as a running process sees them: reloaded when a file changes, the last valid ones kept on an error.

A cold start pays for parsing YAML and for building the specs' validators (the larger cost: tens of milliseconds)
only when something changed: the validated specs are kept in a compiled cache, pickled, keyed by the spec files'
names and bytes, the code of the models they are made of (relaunch.domain) and the Python and pydantic versions.
A cache of any other key, or one that does not read back as specs, is never trusted: the files are loaded and
validated as always, and the cache rewritten atomically. The cache lives in the stack's home, beside its database
and secrets: whoever can write it can change those too.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import pydantic

from relaunch.config_files import load_specs, spec_files
from relaunch.domain import spec as spec_module
from relaunch.domain.spec import PipelineSpec, SpecError

log = logging.getLogger(__name__)
COMPILED_FORMAT = "relaunch-specs/1"  # part of the key: a cache of another format is never read as this one


def compiled_specs(directory: Path, cache: Path) -> dict[str, PipelineSpec]:
    """The specs of `directory`: from the compiled `cache` when it was compiled from the same files and code, else
    loaded (and the cache rewritten). Raises SpecError as load_specs does."""
    key = _key(directory)
    held = _read(cache, key) if key else None
    if held is not None:
        return held
    specs = load_specs(directory)
    if key and _key(directory) == key:  # not edited while it was loaded: the specs are those of the key's bytes
        _write(cache, key, specs)
    return specs


def _key(directory: Path) -> str | None:
    """What the specs are made of, hashed; None when a file cannot be read (load_specs will say which)."""
    digest = hashlib.sha256(f"{COMPILED_FORMAT} {sys.version_info[:3]} {pydantic.VERSION}".encode())
    code = sorted(Path(spec_module.__file__).parent.glob("*.py"))
    try:
        for path in (*code, *spec_files(directory)):
            data = path.read_bytes()
            digest.update(b"%d:%s%d:" % (len(path.name), path.name.encode(), len(data)) + data)
    except OSError:
        return None
    return digest.hexdigest()


def _read(cache: Path, key: str) -> dict[str, PipelineSpec] | None:
    """The specs the cache holds for `key`, or None (no cache, another key, or not a cache of specs)."""
    try:
        with cache.open("rb") as held:
            if held.readline().rstrip(b"\n") != key.encode():
                return None
            specs = pickle.load(held)
    except Exception:  # noqa: BLE001 (a truncated or foreign file is a miss: the specs are loaded as always)
        return None
    if not isinstance(specs, dict) or not all(isinstance(v, PipelineSpec) for v in specs.values()):
        return None
    return specs


def _write(cache: Path, key: str, specs: dict[str, PipelineSpec]) -> None:
    """Keep `specs` under `key`, atomically: a reader sees the old cache or the new one, never half of one."""
    temp: str | None = None
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=cache.parent, prefix=".specs-")
        with os.fdopen(handle, "wb") as out:
            out.write(key.encode() + b"\n" + pickle.dumps(specs, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(temp, cache)
    except OSError as exc:  # a read-only home: every cold start loads the files, as before
        log.debug("cannot write the compiled pipeline specs to %s: %s", cache, exc)
        if temp is not None:
            Path(temp).unlink(missing_ok=True)


class SpecCache:
    """Pipeline specs loaded from a folder, reloaded when a file there changes (looked at most once a second).

    An edit that does not validate never takes a running stack down: the last valid specs keep serving, and
    `problem` says why (logged once per edit, added to every webhook answer, and reported by `relaunch doctor`).
    With no valid specs loaded yet there is nothing to keep serving: the error is raised, and the delivery is kept.
    """

    RECHECK_S = 1.0  # the webhook path asks on every request; a folder listing per request is measurable

    def __init__(self, directory: Path, compiled: Path | None = None) -> None:
        """`compiled`: where to keep the validated specs for the next cold start (None: load the files each time)."""
        self._dir = directory
        self._compiled = compiled
        self._stamp: tuple[tuple[str, float], ...] | None = None
        self._checked_at = float("-inf")
        self._specs: dict[str, PipelineSpec] | None = None
        self._loaded_at = ""
        self.problem: str | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Mapping[str, PipelineSpec]:
        with self._lock:
            now = time.monotonic()
            if self._specs is not None and now - self._checked_at < self.RECHECK_S:
                return self._specs
            stamp = tuple(sorted((p.name, p.stat().st_mtime) for p in self._dir.glob("*.y*ml")))
            if stamp != self._stamp or self._specs is None:
                self._reload(stamp)
            self._checked_at = now
            assert self._specs is not None
            return self._specs

    def _reload(self, stamp: tuple[tuple[str, float], ...]) -> None:
        try:
            specs = load_specs(self._dir) if self._compiled is None else compiled_specs(self._dir, self._compiled)
        except SpecError as exc:
            if self._specs is None:
                raise  # nothing valid to keep serving
            if stamp != self._stamp:
                self.problem = f"{exc} (serving the last valid specs, loaded at {self._loaded_at})"
                log.warning("pipeline specs in %s do not validate: %s", self._dir, self.problem)
                self._stamp = stamp
            return
        self._specs, self._stamp, self.problem = specs, stamp, None
        self._loaded_at = time.strftime("%Y-%m-%d %H:%M:%S")
