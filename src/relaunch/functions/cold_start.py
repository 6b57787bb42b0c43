"""What a function process does differently while it starts: the work a start does for nothing, skipped.

`begin` runs when functions-framework executes relaunch's function source (inside its `create_app`), before the rest
of relaunch is imported, and only then: a test or the CLI importing relaunch.functions.main changes nothing.

- **The cyclic garbage collector is held until the first answer.** A start allocates some fifty thousand
  long-lived objects (modules, classes, pydantic validators, the app's adapters) and no garbage worth collecting, yet
  CPython walks them all every few hundred allocations, and the full collection that comes due on the way costs tens
  of milliseconds. The end of the app's first request (answered or failed) calls `gc.freeze()`, which moves everything
  the start built to the permanent generation (never scanned again; it lives as long as the process anyway), then
  resumes collection with its usual thresholds. Under gunicorn the source is executed in the master before it forks
  the workers, as `gc.freeze`'s documentation advises (disable early in the parent, freeze, enable in the child): the
  master serves nothing and keeps the hold; each worker ends it at its own first answer. Collection that something
  else turned off is left to it.
- **pydantic's plugin scan is skipped** (PYDANTIC_DISABLE_PLUGINS=__all__, unless the deployment sets it): its first
  validator otherwise reads the entry points of every installed distribution looking for plugins relaunch does not
  use, 8-12 ms with the Google Cloud SDKs installed (pydantic 2.7 and later read the variable; 2.6 scans anyway).
"""

from __future__ import annotations

import gc
import os

import flask

PLUGINS_VARIABLE = "PYDANTIC_DISABLE_PLUGINS"


def begin(app: flask.Flask) -> None:
    """A cold start of `app`'s function begins: skip what it would do for nothing, until its first answer."""
    os.environ.setdefault(PLUGINS_VARIABLE, "__all__")
    if not gc.isenabled():  # whoever turned collection off decides when it comes back
        return
    gc.disable()
    app.teardown_request(_first_answered)


def _first_answered(_error: BaseException | None = None) -> None:
    if gc.isenabled():  # a later request, or another thread's first: resumed already
        return
    gc.freeze()
    gc.enable()
