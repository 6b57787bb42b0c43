"""Every function's entry point, in one module: the source functions-framework and `gcloud functions deploy` load.

Names resolve lazily (PEP 562), so a process serving one function imports only that function's module. The lookup
also installs our error handlers and each request's log context on the app being created, and sets up the process's
log lines (relaunch.logs): functions-framework resolves the name inside `create_app`'s app context, for every app
(this module is imported once; the deployed functions/main.py re-exports it).
"""

from __future__ import annotations

import flask

if flask.has_app_context():  # functions-framework is executing this as a function's source: a cold start begins
    from relaunch.functions.cold_start import begin

    begin(flask.current_app)

import importlib  # noqa: E402 (after `begin`: what follows is the start it covers)
import os  # noqa: E402
from typing import Any  # noqa: E402

from relaunch.domain.model import FunctionName  # noqa: E402
from relaunch.handoff import WARM_UP_PATH_VARIABLE  # noqa: E402

ENTRY_POINTS = {name.value: f"relaunch.functions.{name.value}" for name in FunctionName}  # each in its own module
# Not a FunctionName: no topic, no inbox key, and embedded stacks run it only when asked (`relaunch up` does).
ENTRY_POINTS["dashboard"] = "relaunch.functions.dashboard"

__all__ = sorted(ENTRY_POINTS)


def __getattr__(name: str) -> Any:
    module = ENTRY_POINTS.get(name)
    if module is None:
        raise AttributeError(f"relaunch has no function {name!r}; functions: {', '.join(sorted(ENTRY_POINTS))}")
    function = getattr(importlib.import_module(module), name)
    if flask.has_app_context():
        from relaunch.functions.log_context import install_logging  # noqa: PLC0415 (lazy, like the functions)
        from relaunch.functions.responses import install_error_handlers  # noqa: PLC0415

        install_error_handlers(flask.current_app)
        install_logging(flask.current_app)  # after functions-framework's own logging setup: create_app has done it
        if os.environ.get(WARM_UP_PATH_VARIABLE):  # the embedded stack's warm-up request, before it reports ready
            from relaunch.functions.warm_up import install_warm_up  # noqa: PLC0415

            install_warm_up(flask.current_app, name, os.environ[WARM_UP_PATH_VARIABLE])
    return function
