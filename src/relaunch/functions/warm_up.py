"""The embedded stack's warm-up request: a function builds, before the stack reports ready, what its first delivery
would otherwise build while a sender waits (the store, the bus, the specs, its service and the modules they import).

Only processes the embedded stack started answer it, at the path it gives them in RELAUNCH_WARM_UP_PATH
(adapters/local/stack_warm.py): deployed functions have no such path. It reads nothing from the request and writes
nothing: no run, no inbox row, no notice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import flask

from relaunch import bootstrap

log = logging.getLogger(__name__)

# What each function's first delivery builds (bootstrap.App's services); the others wait on no sender and stay lazy.
SERVICES: dict[str, tuple[str, ...]] = {
    "github_webhook": ("ingest",),
    "wandb_webhook": ("ingest",),
    "orchestrator": ("orchestrator",),
}


def _read_endpoints(app: bootstrap.App) -> None:
    """Ask each pipeline's endpoint for its split, as a rollout does first: the client's imports and connection are
    made now (a read: it changes nothing)."""
    for spec in app.specs().values():
        app.endpoint.traffic(spec.endpoint)


# What else each function's first delivery does that is worth doing before it: reads only.
READS: dict[str, Callable[[bootstrap.App], None]] = {"orchestrator": _read_endpoints}


def install_warm_up(app: flask.Flask, function: str, path: str) -> None:
    """Answer the stack's warm-up request, at `path`, on `app` (functions/main.py calls this only in the stack)."""
    app.before_request(_answer_for(function, path))


def _answer_for(function: str, path: str) -> Callable[[], tuple[dict[str, object], int] | None]:
    def answer() -> tuple[dict[str, object], int] | None:
        if flask.request.path != path or flask.request.method != "GET":
            return None  # a delivery: served as always
        return warm(function)

    return answer


def warm(function: str) -> tuple[dict[str, object], int]:
    """Build `function`'s services in this process; 503 (the stack goes on: the first delivery will say why) if the
    app cannot be built."""
    started = time.perf_counter()
    built = SERVICES.get(function, ())
    try:
        app = bootstrap.app()
        for name in built:
            getattr(app, name)
        if built:
            app.specs()  # the first delivery reads them: parsed and validated now
    except Exception as exc:  # noqa: BLE001 (settings or specs that do not validate: the function's log says why)
        log.warning("warm-up: %s cannot build its app yet (%s)", function, type(exc).__name__)
        return {"warm": False}, 503
    try:
        READS.get(function, lambda app: None)(app)
    except Exception as exc:  # noqa: BLE001 (a read that fails now is retried by the delivery that needs it)
        log.info("warm-up: %s could not read ahead (%s)", function, type(exc).__name__)
    if built:
        log.info("warm-up: built %s in %.3f s", ", ".join(built), time.perf_counter() - started)
    return {"warm": True, "built": list(built)}, 200
