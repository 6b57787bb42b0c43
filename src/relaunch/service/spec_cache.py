"""Pipeline specs as a running process sees them: reloaded when a file changes, the last valid ones kept on an error."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from relaunch.config_files import load_specs
from relaunch.domain.spec import PipelineSpec, SpecError

log = logging.getLogger(__name__)


class SpecCache:
    """Pipeline specs loaded from a folder, reloaded when a file there changes (looked at most once a second).

    An edit that does not validate never takes a running stack down: the last valid specs keep serving, and
    `problem` says why (logged once per edit, added to every webhook answer, and reported by `relaunch doctor`).
    With no valid specs loaded yet there is nothing to keep serving: the error is raised, and the delivery is kept.
    """

    RECHECK_S = 1.0  # the webhook path asks on every request; a folder listing per request is measurable

    def __init__(self, directory: Path) -> None:
        self._dir = directory
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
            specs = load_specs(self._dir)
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
