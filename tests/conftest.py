"""Suite-wide: the tests that use gcloud's Pub/Sub and Firestore emulators run on one xdist worker, and Hypothesis
judges inputs, not the machine's speed.

Their race tests (many store instances contending for one document) measure the emulator's concurrency control,
and two workers each running an emulator on the machine's two cores turn its answers into timeouts and aborts that a
single emulator under the same test never gives. One group: one worker starts the emulators, once per session; the
other tests spread over the remaining workers.

Hypothesis's timing checks (a 200 ms deadline per example, "input generation is slow") measure how busy the cores
are, and with the workers sharing them a clean-clone CI run failed one on a generator that is fast alone. Speed is
measured in benchmarks/, never in tests: the suite's profile turns both off, and keeps every other health check.

`-n auto` is one worker more than the machine has cores: about a fifth of the suite's wall time is spent waiting
(on a job's poll, a bake, a child process starting), and a third worker fills it (on 2 cores: 548 s against 580 s).

A test that runs a function in-process configures the root logger as the function does (a handler on stderr): each
test gets the root logger back as it found it, so a later test's warnings are not printed by an earlier test's
handler (seen: a log-capture test on the same worker found another test's lines on its stderr).

A test module whose tests share a module-scoped fixture (a running stack, a demo's outcome) is one group too: spread
over four workers, its fixture ran up to four times (the demo scenario's 35 s twice in one run).

Every Python process the suite starts (each stack's nine functions, its agent, the CLI, the jobs) imports relaunch
from source. Where PYTHONDONTWRITEBYTECODE is set (this machine's environment sets it, and a clean checkout has no
__pycache__), none of them may write the bytecode it compiled, so each compiled the whole package again: about 130 ms
of every function's start, hundreds of times a run. The controller compiles the package, the tests' helpers and the
example once per session (under a second; then only what changed), and every process reads that bytecode.

The commits' Python environments (the local build's) are shared by every stack the suite starts, as
RELAUNCH_PYTHON_ENVS_DIR lets stacks share them: the digits example's environment is installed and byte-compiled once
per machine, not once per test home (about 13 s of CPU each). A test about building one sets its own folder.
"""

from __future__ import annotations

import gc
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

SHARED_ENVS = Path(tempfile.gettempdir()) / f"relaunch-test-envs-{os.getuid()}"
os.environ.setdefault("RELAUNCH_PYTHON_ENVS_DIR", str(SHARED_ENVS))
settings.register_profile("relaunch", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("relaunch")

TESTS = Path(__file__).parent
EMULATOR_USERS = (
    "contract/",
    "integration/gcp/",
    "integration/test_retrain_action.py",
    "e2e/test_demo_on_emulators.py",
    "e2e/test_demo_gcp_emulated.py",
)


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist): once, before any worker starts
        import compileall

        import relaunch

        for folder in (Path(relaunch.__file__).parent, TESTS, TESTS.parent / "examples"):
            compileall.compile_dir(folder, quiet=2)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    return (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1) + 1


@pytest.fixture(autouse=True)
def _root_logger_as_found() -> Iterator[None]:
    """Removes the handlers relaunch's own logging added during the test (pytest's capture handlers are its own)."""
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in before and type(handler).__module__ == "relaunch.logs":
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    logging.captureWarnings(False)


@pytest.fixture(autouse=True)
def _collector_as_found() -> Iterator[None]:
    """A test that builds a function's app in-process begins its cold start (relaunch.functions.cold_start): the
    collector is held until that app's first answer, which then freezes every object alive in this process. Both are
    undone here, so no test's garbage outlives it (a store kept alive has its WAL watched by the checkpoint thread).
    """
    yield
    if not gc.isenabled():
        gc.enable()
    if gc.get_freeze_count():
        gc.unfreeze()


def pytest_itemcollected(item: pytest.Item) -> None:
    """Each item's group, as it is collected: before any `pytest_collection_modifyitems`, where xdist reads the
    groups off the markers (ordering against xdist's own hook held under pytest 9.0 and not under 9.2)."""
    where = item.path.relative_to(TESTS).as_posix() if item.path.is_relative_to(TESTS) else ""
    if where.startswith(EMULATOR_USERS):
        item.add_marker(pytest.mark.xdist_group("gcloud-emulators"))
    elif _shares_a_module_fixture(item):  # one worker runs the module: its fixture (a stack, a demo) runs once
        item.add_marker(pytest.mark.xdist_group(where))


def _shares_a_module_fixture(item: pytest.Item) -> bool:
    """Whether the test uses a module- or class-scoped fixture (spread over workers, each would build it again)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(defs and defs[-1].scope in ("module", "class") for defs in info.name2fixturedefs.values())
